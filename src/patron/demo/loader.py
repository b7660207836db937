"""Loading the demo data into a store, once.

Two sources keep real and made-up data apart: ``demo:cdnow`` holds the real CDNOW
purchases, ``demo:synthetic`` the generated customer life around them (labelled in
every message, see :mod:`patron.demo.synthetic`). The store's meta table remembers a
finished load, so ``patron demo`` (and ``make run``) loads once; an interrupted load
is simply run again, as every message id is deterministic and duplicates are skipped.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any

import orjson

from patron.collect.exceptions import KeyNameError
from patron.collect.importers.report import CHUNK_SIZE, ChunkWriter, ImportReport, NoProgress, Progress
from patron.collect.keys import KeyRing
from patron.collect.spec import EventRow, MessageValidator, Rejection, content_message_id, rows_to_table
from patron.collect.timestamps import utc_now
from patron.config import Settings
from patron.demo.cdnow import DATASET, purchase_messages, read_purchases
from patron.demo.synthetic import CustomerHistory, customer_messages, email_campaigns
from patron.store.base import Store

META_KEY = "demo.loaded"
REAL_SOURCE = "demo:cdnow"
SYNTHETIC_SOURCE = "demo:synthetic"
DEMO_SEED = 1997
DEMO_KEY_NAME = "demo"
_END = date(1998, 6, 30)


@dataclass
class DemoSummary:
    """What the demo put in the store (remembered in the meta table, the key excepted)."""

    loaded_at: str
    seconds: float
    seed: int
    real: dict[str, Any]
    """``source``, ``dataset``, ``customers``, ``orders``, ``first``, ``last``."""
    synthetic: dict[str, int]
    """Messages per ``type`` or ``track`` event name, in ``demo:synthetic``."""
    rejected: int = 0
    write_key: str | None = field(default=None)
    """The ``demo`` write key: set only by the load that created it (shown once)."""
    already_loaded: bool = False

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


class DemoLoader:
    """``workspace.demo``: loads the bundled demo data into the store once."""

    def __init__(self, store: Store, settings: Settings, keys: KeyRing) -> None:
        self.store = store
        self.settings = settings
        self.keys = keys

    def loaded(self) -> DemoSummary | None:
        """The summary of the finished earlier load, if any."""
        text = self.store.get_meta(META_KEY)
        if text is None:
            return None
        summary = DemoSummary(**orjson.loads(text))
        summary.already_loaded = True
        return summary

    def load(self, progress: Progress | None = None, *, seed: int = DEMO_SEED) -> DemoSummary:
        """Load the demo data unless already loaded; create the ``demo`` write key.

        Returns:
            What is in the store; ``already_loaded`` tells whether this call loaded it.
        """
        earlier = self.loaded()
        if earlier is not None:
            return earlier
        progress = progress or NoProgress()
        started = utc_now()
        validator = MessageValidator(
            max_message_bytes=self.settings.max_message_bytes,
            max_future=self.settings.max_future,
            message_id_fallback=content_message_id,
        )
        purchases = read_purchases()
        real = self._append(
            REAL_SOURCE, validator, purchase_messages(purchases), progress,
            f"{DATASET}: purchases", len(purchases), per_message=True,
        )
        days: dict[str, list[date]] = defaultdict(list)
        for p in purchases:
            days[p.user_id].append(p.day)
        histories = [CustomerHistory(user, tuple(sorted(d))) for user, d in days.items()]
        campaigns = email_campaigns(date(1997, 1, 1), _END, every_days=120)
        synthetic = self._append(
            SYNTHETIC_SOURCE,
            validator,
            (
                customer_messages(h, seed=seed, end=_END, campaigns=campaigns)
                for h in histories
            ),
            progress,
            "synthetic customer life (labelled)",
            len(histories),
            per_message=False,
        )
        key = self._create_key()
        finished = utc_now()
        summary = DemoSummary(
            loaded_at=finished.isoformat(timespec="seconds") + "Z",
            seconds=round((finished - started) / timedelta(seconds=1), 1),
            seed=seed,
            real=self._real_counts(),
            synthetic=self._synthetic_counts(),
            rejected=real.rejected + synthetic.rejected,
        )
        self.store.set_meta(META_KEY, orjson.dumps(summary.as_json()).decode())
        summary.write_key = key
        return summary

    def _append(
        self,
        source_id: str,
        validator: MessageValidator,
        items: Any,
        progress: Progress,
        description: str,
        total: int,
        *,
        per_message: bool,
    ) -> ImportReport:
        """Validate and append messages in chunks; ``items`` are messages or lists of them."""
        report = ImportReport("demo", description, source_id)
        received_at = utc_now()
        writer = ChunkWriter(self.store, report, received_at)
        progress.start(description, total)
        rows: list[EventRow] = []
        rejections: list[Rejection] = []
        done = 0
        for item in items:
            for message in [item] if per_message else item:
                outcome = validator.check(message, source_id=source_id, received_at=received_at)
                (rejections if isinstance(outcome, Rejection) else rows).append(outcome)  # type: ignore[arg-type]
            done += 1
            if len(rows) + len(rejections) >= CHUNK_SIZE:
                writer.write(rows_to_table(rows), rejections)
                progress.advance(done)
                rows, rejections, done = [], [], 0
        writer.write(rows_to_table(rows), rejections)
        progress.advance(done)
        return report

    def _create_key(self) -> str | None:
        try:
            return self.keys.create(DEMO_KEY_NAME, "write", source_id="demo").key
        except KeyNameError:  # made by an earlier, interrupted load, or by hand
            return None

    def _real_counts(self) -> dict[str, Any]:
        events = self.store.events()
        real = events.filter(events.source_id == REAL_SOURCE)
        row = self.store.to_pyarrow(
            real.aggregate(
                orders=real.count(),
                customers=real.user_id.nunique(),
                first=real.timestamp.min(),
                last=real.timestamp.max(),
            )
        ).to_pylist()[0]
        return {
            "source": REAL_SOURCE,
            "dataset": DATASET,
            "customers": int(row["customers"]),
            "orders": int(row["orders"]),
            "first": row["first"].date().isoformat() if row["first"] else None,
            "last": row["last"].date().isoformat() if row["last"] else None,
        }

    def _synthetic_counts(self) -> dict[str, int]:
        events = self.store.events()
        synthetic = events.filter(events.source_id == SYNTHETIC_SOURCE)
        label = synthetic.event.fill_null(synthetic.type).name("label")
        counts = self.store.to_pyarrow(synthetic.group_by(label).agg(n=synthetic.count())).to_pylist()
        return {r["label"]: int(r["n"]) for r in sorted(counts, key=lambda r: -r["n"])}
