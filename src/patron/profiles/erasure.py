"""Erasure on request: remove a person, and keep them removed.

``erase`` removes every event that carries one of the person's identifiers (by user id,
anonymous id, or an email, phone or external id inside the message), their failed
messages and split records, then rebuilds the identity graph and profiles, so no
derived row is left either. What stays is a **tombstone** per identifier: a salted
SHA-256 of ``type:value`` (the salt is random per store, kept in its meta table), which
says "this identifier was erased" without saying what it was; and a receipt that counts
what was removed.

Every write path goes through :class:`ErasureGuard`, which drops events (and failed
messages) that carry a tombstoned identifier before they are stored: replays, imports and
late events from SDKs. Dropped rows are counted in the answer (``erased``), never stored,
not even among failed messages.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from patron.collect.timestamps import utc_now
from patron.identity.identifiers import ANONYMOUS_ID, USER_ID, Identifier, IdentifierRules
from patron.store.base import AppendResult, Store

TOMBSTONES = "erasure_tombstones"
RECEIPTS = "erasure_receipts"
_SALT_KEY = "erasure_salt"

TOMBSTONE_SCHEMA = pa.schema(
    [("tombstone", pa.string()), ("identifier_type", pa.string()), ("receipt_id", pa.string()), ("erased_at", pa.timestamp("us"))]
)
RECEIPT_SCHEMA = pa.schema(
    [
        ("receipt_id", pa.string()),
        ("profile_id", pa.string()),
        ("erased_at", pa.timestamp("us")),
        ("identifiers", pa.string()),
        ("events_removed", pa.int64()),
        ("failed_removed", pa.int64()),
    ]
)


class Tombstones:
    """The salted hashes of erased identifiers, loaded once and kept in memory."""

    def __init__(self, store: Store, rules: IdentifierRules) -> None:
        self.store = store
        self.rules = rules
        self._lock = threading.Lock()
        self._salt: str | None = None
        self._hashes: set[str] | None = None

    def salt(self) -> str:
        if self._salt is None:
            salt = self.store.get_meta(_SALT_KEY)
            if salt is None:
                salt = secrets.token_hex(16)
                self.store.set_meta(_SALT_KEY, salt)
            self._salt = salt
        return self._salt

    def hash(self, identifier: Identifier) -> str:
        return hashlib.sha256(f"{self.salt()}|{identifier.type}:{identifier.value}".encode()).hexdigest()

    def hashes(self) -> set[str]:
        with self._lock:
            if self._hashes is None:
                if self.store.has_table(TOMBSTONES):
                    column = self.store.to_pyarrow(self.store.table(TOMBSTONES).select("tombstone")).column(0)
                    self._hashes = set(column.to_pylist())
                else:
                    self._hashes = set()
            return self._hashes

    def remember(self, hashes: set[str]) -> None:
        with self._lock:
            self._hashes = (self._hashes or set()) | hashes

    def erased(self, raw: str, user_id: str | None, anonymous_id: str | None, hashes: set[str] | None = None) -> bool:
        """Whether a message carries an identifier in ``hashes`` (default: all tombstones)."""
        wanted = self.hashes() if hashes is None else hashes
        if not wanted:
            return False
        for kind, value in ((USER_ID, user_id), (ANONYMOUS_ID, anonymous_id)):
            if value is not None and self.hash(Identifier(kind, value)) in wanted:
                return True
        try:
            message = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return False
        if not isinstance(message, dict):
            return False
        return any(isinstance(i, Identifier) and self.hash(i) in wanted for i in self.rules.in_message(message))

    def mask(self, table: pa.Table, hashes: set[str] | None = None) -> list[bool]:
        """Per row of an events (or failed-events) table: does it belong to an erased person?"""
        raws = table.column("raw").to_pylist()
        users = table.column("user_id").to_pylist() if "user_id" in table.column_names else [None] * len(raws)
        anons = table.column("anonymous_id").to_pylist() if "anonymous_id" in table.column_names else [None] * len(raws)
        return [self.erased(r, u, a, hashes) for r, u, a in zip(raws, users, anons, strict=True)]


class ErasureGuard:
    """A store that refuses to store events of erased people; everything else passes through."""

    def __init__(self, store: Store, tombstones: Tombstones) -> None:
        self._store = store
        self.tombstones = tombstones

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def append(self, events: pa.Table, failed: pa.Table | None = None) -> AppendResult:
        if not self.tombstones.hashes():
            return self._store.append(events, failed)
        dropped: frozenset[tuple[str, str]] = frozenset()
        if events.num_rows:
            mask = pa.array(self.tombstones.mask(events))
            if pc.any(mask).as_py():
                gone = events.filter(mask)
                dropped = frozenset(
                    zip(gone.column("source_id").to_pylist(), gone.column("message_id").to_pylist(), strict=True)
                )
                events = events.filter(pc.invert(mask))
        if failed is not None and failed.num_rows:
            failed = failed.filter(pc.invert(pa.array(self.tombstones.mask(failed))))
        result = self._store.append(events, failed)
        return AppendResult(result.inserted, result.failed_stored, dropped)


@dataclass(frozen=True)
class ErasureReceipt:
    """What an erasure removed; it names no identifier, only how many of each type."""

    receipt_id: str
    profile_id: str
    erased_at: Any
    identifiers: dict[str, int]
    events_removed: int
    failed_removed: int

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class ErasurePlan:
    receipt: ErasureReceipt
    tombstones: pa.Table
    event_keys: pa.Table
    failed_ids: list[int]
    identifiers: pa.Table
    receipt_rows: pa.Table


def plan_erasure(store: Store, tombstones: Tombstones, profile_id: str, identifiers: list[Identifier]) -> ErasurePlan:
    """Everything to remove for one person, found by scanning the log for their identifiers."""
    hashes = {tombstones.hash(i) for i in identifiers}
    events = store.to_pyarrow(store.events().select("source_id", "message_id", "user_id", "anonymous_id", "raw"))
    event_mask = pa.array(tombstones.mask(events, hashes), type=pa.bool_())
    event_keys = events.filter(event_mask).select(["source_id", "message_id"])
    failed = store.to_pyarrow(store.failed_events().select("failed_id", "raw"))
    failed_ids = failed.filter(pa.array(tombstones.mask(failed, hashes), type=pa.bool_())).column("failed_id").to_pylist()
    now = utc_now()
    receipt_id = "erasure_" + secrets.token_hex(8)
    counts: dict[str, int] = {}
    for identifier in identifiers:
        counts[identifier.type] = counts.get(identifier.type, 0) + 1
    receipt = ErasureReceipt(receipt_id, profile_id, now, counts, event_keys.num_rows, len(failed_ids))
    tombstone_rows = pa.Table.from_pylist(
        [
            {"tombstone": tombstones.hash(i), "identifier_type": i.type, "receipt_id": receipt_id, "erased_at": now}
            for i in identifiers
        ],
        schema=TOMBSTONE_SCHEMA,
    )
    receipt_rows = pa.Table.from_pylist(
        [
            {
                "receipt_id": receipt_id,
                "profile_id": profile_id,
                "erased_at": now,
                "identifiers": orjson.dumps(counts).decode(),
                "events_removed": receipt.events_removed,
                "failed_removed": receipt.failed_removed,
            }
        ],
        schema=RECEIPT_SCHEMA,
    )
    id_rows = pa.Table.from_pylist(
        [{"identifier_type": i.type, "identifier_value": i.value} for i in identifiers],
        schema=pa.schema([("identifier_type", pa.string()), ("identifier_value", pa.string())]),
    )
    return ErasurePlan(receipt, tombstone_rows, event_keys, failed_ids, id_rows, receipt_rows)
