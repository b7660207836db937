"""API keys: source write keys and read/admin tokens.

A key is 32 random URL-safe characters (192 bits) shown once at creation. Only its
SHA-256 is stored: with that much entropy a slow password hash adds nothing, and a fast
hash keeps the per-request lookup cheap.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from dataclasses import dataclass

from patron.collect.exceptions import AuthenticationError, KeyNameError, UnknownKey
from patron.collect.timestamps import utc_now
from patron.store.base import KeyRecord, Store

SCOPES: tuple[str, ...] = ("write", "read", "admin")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


@dataclass(frozen=True)
class NewKey:
    """A freshly created key; ``key`` is the only time the secret is visible."""

    key: str
    name: str
    scope: str
    source_id: str


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


#: Seconds a key seen valid is trusted without asking the store again, so a key revoked
#: by another process stops working within this time.
KEY_CACHE_SECONDS = 30.0


class KeyRing:
    """Creates, checks and revokes keys; remembers for a short while the ones seen valid."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._cache: dict[str, tuple[float, KeyRecord]] = {}
        self._lock = threading.Lock()

    def create(self, name: str, scope: str, *, source_id: str | None = None) -> NewKey:
        """Create a key; for write keys, ``source_id`` (default: the name) names the source."""
        if not _NAME.match(name):
            raise KeyNameError(
                f"key name {name!r} must be 1-64 letters, digits, '_', '.', ':' or '-', "
                "starting with a letter or digit"
            )
        if scope not in SCOPES:
            raise KeyNameError(f"scope {scope!r} is not one of {', '.join(SCOPES)}")
        if any(record.name == name for record in self.store.list_keys()):
            raise KeyNameError(f"a key named {name!r} already exists; choose another name")
        secret = "pk_" + secrets.token_urlsafe(24)
        record = KeyRecord(
            name=name,
            source_id=source_id or name,
            scope=scope,
            key_hash=hash_key(secret),
            key_prefix=secret[:7],
            created_at=utc_now(),
            revoked_at=None,
        )
        self.store.add_key(record)
        return NewKey(secret, name, scope, record.source_id)

    def authenticate(self, key: str | None, *, scope: str) -> KeyRecord:
        """The active key record for ``key`` if it carries ``scope`` (admin carries all)."""
        if not key:
            how = "or as writeKey in the body" if scope == "write" else "or as a Bearer token"
            raise AuthenticationError(
                f"a {scope} key is required: send it as the HTTP Basic user name with an empty "
                f"password, {how} (`patron keys create --scope {scope}`)"
            )
        digest = hash_key(key)
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(digest)
        if cached is not None and now - cached[0] < KEY_CACHE_SECONDS:
            record = cached[1]
        else:
            found = self.store.find_key(digest)
            if found is None or found.revoked_at is not None:
                with self._lock:
                    self._cache.pop(digest, None)
                raise AuthenticationError("unknown or revoked key; create one with `patron keys create`")
            record = found
            with self._lock:
                self._cache[digest] = (now, record)
        if record.scope != scope and record.scope != "admin":
            raise AuthenticationError(f"key {record.name!r} has scope {record.scope!r}, not {scope!r}")
        return record

    def revoke(self, name: str) -> None:
        if not self.store.revoke_key(name, utc_now()):
            raise UnknownKey(name)
        with self._lock:
            self._cache = {h: c for h, c in self._cache.items() if c[1].name != name}

    def list(self) -> list[KeyRecord]:
        return self.store.list_keys()
