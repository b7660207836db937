"""The embedded default store: one DuckDB file.

DuckDB connections are not safe to share between threads, so every thread gets its
own cursor on the one database; Ibis reads go through a separate cursor behind a lock.
A commit in DuckDB writes its write-ahead log before returning, which is what makes a
returned :meth:`DuckDBStore.append` durable against a killed process.

When the disk is full (or the file cannot be written), DuckDB behaves in one of two ways,
and both end in :class:`~patron.store.exceptions.StoreUnavailable` (HTTP 503), with
nothing of the failed transaction stored:

* a commit whose write-ahead-log write fails is rolled back, and the log is cut back to
  its last commit; the next commit that fits succeeds;
* a checkpoint (DuckDB runs one when the log passes ``checkpoint_threshold``) that cannot write the database
  file *invalidates* the database: every later statement fails until it is reopened. The
  committed transactions are still in the log. The store then refuses work with the first
  error and, at most once every :data:`REOPEN_INTERVAL` seconds, waits for the operations
  in flight to finish, closes every connection and reopens the file (DuckDB replays the
  log), so writing resumes on its own once space is freed, without a restart.

``tests/faults/test_disk_full.py`` drives both through a real server.

A store file this process may read but not write (mode 0444, a read-only mount, another
owner) is opened **read-only** rather than refused: reads work, every write raises
:class:`~patron.store.exceptions.StoreUnavailable` (so ``patron serve`` answers 503 with
``code: store_unavailable`` and ``/health`` says ``degraded``), and nothing is ever
acknowledged. An operator sees the reason in every answer and on ``/health``, monitors
and SDK logs see a clear 503 rather than a refused connection, and reads keep working.
At most once every :data:`REOPEN_INTERVAL` seconds a write tries to reopen the file
read-write, so fixing the permissions is enough, without a restart.
``tests/faults/test_read_only.py`` drives this through a real server.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import ibis
import ibis.expr.datatypes as dt
import ibis.expr.operations as ops
import pyarrow as pa

from patron.store.base import Append, AppendResult, Change, DeleteRows, Drop, KeyRecord, Replace
from patron.store.exceptions import LakeError, StoreLocked, StoreUnavailable, StoreVersionError
from patron.store.lake import EVENTS_DIR, PARTITION
from patron.store.tables import EVENT_COLUMNS, FAILED_COLUMNS, SCHEMA_VERSION

if TYPE_CHECKING:
    import ibis.expr.types as ir

#: Seconds between attempts to reopen a database that DuckDB has invalidated, or to
#: reopen read-write a store that had to be opened read-only.
REOPEN_INTERVAL = 1.0

#: DuckDB checkpoints (folds its write-ahead log into the file) when the log passes this
#: size; its own default, 16 MB, is about 16,000 1 KB events, and the writer waits for
#: every checkpoint. A larger log means fewer, longer pauses and a longer replay after a
#: crash (docs/benchmarks.md has the measurements). ``PATRON_CHECKPOINT_THRESHOLD``.
DEFAULT_CHECKPOINT_THRESHOLD = "256MB"

_log = logging.getLogger(__name__)

_EVENT_COLS = ", ".join(f'"{c}"' for c in EVENT_COLUMNS)
_FAILED_COLS = ", ".join(f'"{c}"' for c in FAILED_COLUMNS)

_DDL = [
    "CREATE SEQUENCE IF NOT EXISTS event_seq",
    "CREATE SEQUENCE IF NOT EXISTS failed_seq",
    """
    CREATE TABLE IF NOT EXISTS events (
        seq BIGINT NOT NULL DEFAULT nextval('event_seq'),
        source_id VARCHAR NOT NULL,
        message_id VARCHAR NOT NULL,
        type VARCHAR NOT NULL,
        event VARCHAR,
        name VARCHAR,
        user_id VARCHAR,
        anonymous_id VARCHAR,
        group_id VARCHAR,
        previous_id VARCHAR,
        "timestamp" TIMESTAMP NOT NULL,
        original_timestamp TIMESTAMP,
        sent_at TIMESTAMP,
        received_at TIMESTAMP NOT NULL,
        raw VARCHAR NOT NULL,
        PRIMARY KEY (source_id, message_id)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS failed_events (
        failed_id BIGINT PRIMARY KEY DEFAULT nextval('failed_seq'),
        source_id VARCHAR NOT NULL,
        received_at TIMESTAMP NOT NULL,
        message_index BIGINT,
        field VARCHAR,
        reason VARCHAR NOT NULL,
        raw VARCHAR NOT NULL,
        status VARCHAR NOT NULL DEFAULT 'failed',
        replayed_at TIMESTAMP
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS api_keys (
        name VARCHAR PRIMARY KEY,
        source_id VARCHAR NOT NULL,
        scope VARCHAR NOT NULL,
        key_hash VARCHAR NOT NULL UNIQUE,
        key_prefix VARCHAR NOT NULL,
        created_at TIMESTAMP NOT NULL,
        revoked_at TIMESTAMP
    )
    """,
    "CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)",
]


def _is_lock_error(error: duckdb.Error) -> bool:
    text = str(error)
    return "Could not set lock" in text or "Conflicting lock" in text


class DuckDBStore:
    """The default :class:`~patron.store.base.Store`: a single DuckDB file."""

    graph_in_engine = False  # one machine: scipy on the graph in memory

    def __init__(
        self,
        path: Path,
        con: duckdb.DuckDBPyConnection,
        *,
        read_only: bool = False,
        checkpoint_threshold: str = DEFAULT_CHECKPOINT_THRESHOLD,
        memory_limit: str | None = None,
    ) -> None:
        self.path = path
        self._checkpoint_threshold = checkpoint_threshold
        self._memory_limit = memory_limit
        self._read_only = read_only
        self._con = con
        self._local = threading.local()
        self._read_lock = threading.Lock()
        self._ibis_con = con.cursor()
        self._ibis = ibis.duckdb.from_connection(self._ibis_con)
        # Invalidation and reopening (see the module docstring): ``_state`` guards
        # ``_broken``, the count of operations in flight and the list of cursors.
        self._broken: str | None = None
        self._state = threading.Condition()
        self._active = 0
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._generation = 0
        self._reopen_at = 0.0
        self._read_only_reason: str | None = None  # why a writable open fell back to read-only

    # -- opening -----------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        read_only: bool = False,
        checkpoint_threshold: str = DEFAULT_CHECKPOINT_THRESHOLD,
        memory_limit: str | None = None,
    ) -> DuckDBStore:
        path = Path(path)
        try:
            con = cls._connect(path, read_only=read_only, checkpoint_threshold=checkpoint_threshold, memory_limit=memory_limit)
        except StoreUnavailable as error:
            if read_only or not _cannot_write(path):
                raise
            # Readable but not writable: serve reads, refuse writes (module docstring).
            con = cls._connect(path, read_only=True, checkpoint_threshold=checkpoint_threshold, memory_limit=memory_limit)
            store = cls(path, con, read_only=True, checkpoint_threshold=checkpoint_threshold, memory_limit=memory_limit)
            store._read_only_reason = f"opened read-only, the file cannot be written: {error.detail}"
            _log.warning("the store %s is %s; writes will be refused", path, store._read_only_reason)
            return store
        store = cls(path, con, read_only=read_only, checkpoint_threshold=checkpoint_threshold, memory_limit=memory_limit)
        if not read_only:
            store._migrate()
        return store

    @property
    def read_only_reason(self) -> str | None:
        """Why this store, opened to be written, can only be read (``None`` when writable)."""
        return self._read_only_reason

    @staticmethod
    def _connect(
        path: Path, *, read_only: bool, checkpoint_threshold: str, memory_limit: str | None
    ) -> duckdb.DuckDBPyConnection:
        if not read_only and path.parent and not path.parent.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return _duckdb_connect(path, read_only=read_only, checkpoint_threshold=checkpoint_threshold, memory_limit=memory_limit)
        except duckdb.IOException as error:
            if _is_lock_error(error):
                detail = str(error).split("\n")[0]
                pid = _pid_in(str(error))
                raise StoreLocked(path, f"held by PID {pid}" if pid else detail) from None
            raise StoreUnavailable(path, _short(error)) from None
        except (duckdb.Error, OSError) as error:
            raise StoreUnavailable(path, _short(error)) from None

    def _migrate(self) -> None:
        cur = self._cursor()
        try:
            for statement in _DDL:
                cur.execute(statement)
            row = cur.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row is None:
                cur.execute(
                    "INSERT INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)]
                )
            elif int(row[0]) > SCHEMA_VERSION:
                raise StoreVersionError(self.path, int(row[0]), SCHEMA_VERSION)
        except duckdb.Error as error:
            raise StoreUnavailable(self.path, _short(error)) from None

    # -- connections -------------------------------------------------------------

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        local = self._local
        if getattr(local, "generation", None) != self._generation:
            local.cursor = self._con.cursor()
            local.generation = self._generation
            with self._state:
                self._cursors.append(local.cursor)
        cur: duckdb.DuckDBPyConnection = local.cursor
        return cur

    @contextmanager
    def _in_use(self) -> Iterator[None]:
        """Around every use of a connection: refuses (or first reopens) an invalidated database."""
        with self._state:
            if self._broken is not None:
                self._reopen()
                if self._broken is not None:
                    raise StoreUnavailable(self.path, self._broken)
            self._active += 1
        try:
            yield
        finally:
            with self._state:
                self._active -= 1
                self._state.notify_all()

    def _unavailable(self, error: duckdb.Error) -> StoreUnavailable:
        """The error to raise for ``error``; remembers a fatal one (the database is invalidated)."""
        if isinstance(error, duckdb.FatalException) or "invalidated" in str(error):
            with self._state:
                if self._broken is None:
                    self._broken = _short(error)
                    self._reopen_at = time.monotonic() + REOPEN_INTERVAL
        return StoreUnavailable(self.path, _short(error))

    def _reopen(self) -> None:
        """Reopen an invalidated database, at most every REOPEN_INTERVAL (``_state`` held)."""
        if time.monotonic() < self._reopen_at:
            return
        self._reopen_at = time.monotonic() + REOPEN_INTERVAL
        # Operations already running fail fast on the invalidated database; new ones are
        # refused while ``_broken`` is set.
        if not self._state.wait_for(lambda: self._active == 0, timeout=5):
            return
        # DuckDB keeps the invalidated instance for this file until every connection to it
        # is closed; only then does connect() open the file afresh and replay the log.
        self._close_all()
        try:
            con = _duckdb_connect(self.path, read_only=self._read_only, checkpoint_threshold=self._checkpoint_threshold, memory_limit=self._memory_limit)
        except (duckdb.Error, OSError):
            return  # still unwritable: keep refusing with the first error
        try:
            con.execute("SELECT 1").fetchall()
        except duckdb.Error:
            with suppress(duckdb.Error):
                con.close()  # or DuckDB would hand this instance back on the next try
            return
        self._con = con
        self._ibis_con = con.cursor()
        self._ibis = ibis.duckdb.from_connection(self._ibis_con)
        self._broken = None

    def _retry_writable(self) -> None:
        """A store that fell back to read-only tries read-write again, at most every REOPEN_INTERVAL."""
        with self._state:
            if self._read_only_reason is None or time.monotonic() < self._reopen_at:
                return
            self._reopen_at = time.monotonic() + REOPEN_INTERVAL
            if not self.path.exists() or _cannot_write(self.path):
                return  # still not writable (or gone: never create a new, empty store here)
            if not self._state.wait_for(lambda: self._active == 0, timeout=5):
                return
            # DuckDB will not open one file both ways in one process: close, then reopen.
            self._close_all()
            try:
                con = _duckdb_connect(self.path, read_only=False, checkpoint_threshold=self._checkpoint_threshold, memory_limit=self._memory_limit)
                read_only = False
            except (duckdb.Error, OSError):
                try:
                    con = _duckdb_connect(self.path, read_only=True, checkpoint_threshold=self._checkpoint_threshold, memory_limit=self._memory_limit)
                except (duckdb.Error, OSError) as error:
                    self._broken = _short(error)
                    return
                read_only = True
            self._con = con
            self._ibis_con = con.cursor()
            self._ibis = ibis.duckdb.from_connection(self._ibis_con)
            self._read_only = read_only
            if not read_only:
                self._read_only_reason = None

    def _close_all(self) -> None:
        for con in [self._ibis_con, *self._cursors, self._con]:
            with suppress(duckdb.Error):
                con.close()
        self._cursors = []
        self._generation += 1

    @contextmanager
    def _transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        if self._read_only_reason is not None:
            self._retry_writable()
            if self._read_only_reason is not None:
                raise StoreUnavailable(self.path, self._read_only_reason)
        with self._in_use():
            cur = self._cursor()
            try:
                cur.execute("BEGIN TRANSACTION")
                yield cur
                cur.execute("COMMIT")
            except duckdb.Error as error:
                with suppress(duckdb.Error):
                    cur.execute("ROLLBACK")
                if isinstance(error, duckdb.ConstraintException | duckdb.InvalidInputException):
                    raise
                raise self._unavailable(error) from None
            except BaseException:
                # Not the engine's fault (a bad Arrow table, an interrupt): still never
                # leave this thread's cursor inside an open transaction.
                with suppress(duckdb.Error):
                    cur.execute("ROLLBACK")
                raise

    # -- event log ---------------------------------------------------------------

    def append(self, events: pa.Table, failed: pa.Table | None = None) -> AppendResult:
        # Most groups hold only new messages, and a plain INSERT is much cheaper than one
        # with ON CONFLICT ... RETURNING (about 3.5 ms a statement here, whatever its
        # size). A duplicate (a retried message) makes the plain insert fail; the whole
        # transaction is rolled back and written again the careful way.
        try:
            return self._append(events, failed, plain=True)
        except duckdb.ConstraintException:
            return self._append(events, failed, plain=False)

    def _append(self, events: pa.Table, failed: pa.Table | None, *, plain: bool) -> AppendResult:
        failed_stored = 0
        with self._transaction() as cur:
            inserted = _insert_new_events(cur, events) if plain else _insert_events(cur, events)
            if failed is not None and failed.num_rows:
                cur.register("_patron_new_failed", failed)
                try:
                    cur.execute(
                        f"INSERT INTO failed_events ({_FAILED_COLS}) "
                        f"SELECT {_FAILED_COLS} FROM _patron_new_failed"
                    )
                finally:
                    cur.unregister("_patron_new_failed")
                failed_stored = failed.num_rows
        return AppendResult(inserted=inserted, failed_stored=failed_stored)

    def export_events(
        self, folder: Path, *, after_seq: int | None = None, seq_offset: int | None = None, prefix: str = "part"
    ) -> dict[str, Any]:
        target = str(folder / EVENTS_DIR).replace("'", "''")
        day = "CAST(timestamp AS DATE)"
        rows = "events" if after_seq is None else f"events WHERE seq > {int(after_seq)}"
        seq = "seq" if seq_offset is None else f"{int(seq_offset)} + row_number() OVER (ORDER BY seq) AS seq"
        _check_table_name(prefix.replace("-", "_"))
        with self._in_use():
            cur = self._cursor()
            try:
                cur.execute("BEGIN TRANSACTION")  # one snapshot for the files and the counts
                try:
                    cur.execute(
                        f"COPY (SELECT {seq}, * EXCLUDE (seq), {day} AS {PARTITION} FROM {rows} ORDER BY seq) "
                        f"TO '{target}' (FORMAT parquet, PARTITION_BY ({PARTITION}), FILENAME_PATTERN '{prefix}-{{i}}')"
                    )
                    row = cur.execute(
                        f"SELECT count(*), count(DISTINCT {day}), CAST(min({day}) AS VARCHAR), "
                        f"CAST(max({day}) AS VARCHAR), max(seq) FROM {rows}"
                    ).fetchone()
                finally:
                    cur.execute("ROLLBACK")  # nothing to keep: it only read
            except duckdb.Error as error:
                raise LakeError(f"cannot write the lake in {folder}: {_short(error)}") from None
        assert row is not None
        events, days, first_day, last_day, max_seq = row
        lake_max = max_seq if seq_offset is None or not events else seq_offset + events
        return {
            "events": events, "days": days, "first_day": first_day, "last_day": last_day,
            "max_seq": lake_max, "source_max_seq": max_seq,
        }  # fmt: skip

    def events(self) -> ir.Table:
        with self._in_use(), self._read_lock:
            return self._ibis.table("events")

    def failed_events(self) -> ir.Table:
        with self._in_use(), self._read_lock:
            return self._ibis.table("failed_events")

    def execute(self, expr: ir.Expr) -> Any:
        """Run an Ibis scalar or column expression; Python values, no pandas (thread-safe)."""
        with self._in_use(), self._read_lock:
            try:
                result = expr.to_pyarrow()
            except duckdb.Error as error:
                raise self._unavailable(error) from None
        return result.as_py() if hasattr(result, "as_py") else result.to_pylist()

    def to_pyarrow(self, expr: ir.Table) -> pa.Table:
        with self._in_use(), self._read_lock:
            try:
                return expr.to_pyarrow()
            except duckdb.Error as error:
                raise self._unavailable(error) from None

    def mark_replayed(self, failed_ids: list[int], events: pa.Table) -> AppendResult:
        with self._transaction() as cur:
            inserted = _insert_events(cur, events)
            if failed_ids:
                cur.execute(
                    "UPDATE failed_events SET status = 'replayed', replayed_at = now()::TIMESTAMP "
                    "WHERE failed_id IN (SELECT unnest(?))",
                    [failed_ids],
                )
        return AppendResult(inserted=inserted, failed_stored=0)

    def apply_erasure(
        self, tombstones: pa.Table, event_keys: pa.Table, failed_ids: list[int], identifiers: pa.Table, receipt: pa.Table
    ) -> None:
        with self._transaction() as cur:
            _append_rows(cur, "erasure_tombstones", tombstones)
            _append_rows(cur, "erasure_receipts", receipt)
            cur.register("_patron_erased_keys", event_keys)
            try:
                cur.execute(
                    "DELETE FROM events WHERE (source_id, message_id) IN "
                    "(SELECT (source_id, message_id) FROM _patron_erased_keys)"
                )
            finally:
                cur.unregister("_patron_erased_keys")
            if failed_ids:
                cur.execute("DELETE FROM failed_events WHERE failed_id IN (SELECT unnest(?))", [failed_ids])
            # Records that name identifiers in pairs: splits, and probable links.
            cur.register("_patron_erased_ids", identifiers)
            try:
                for name in ("identity_removals", "identity_probable_links"):
                    exists = cur.execute(
                        "SELECT 1 FROM information_schema.tables WHERE table_name = ?", [name]
                    ).fetchall()
                    if exists:
                        cur.execute(
                            f"DELETE FROM {name} WHERE (a_type, a_value) IN "
                            "(SELECT (identifier_type, identifier_value) FROM _patron_erased_ids) "
                            "OR (b_type, b_value) IN (SELECT (identifier_type, identifier_value) FROM _patron_erased_ids)"
                        )
            finally:
                cur.unregister("_patron_erased_ids")

    def replace_tables(self, tables: dict[str, pa.Table]) -> None:
        """Replace derived tables (identity graph, profiles) in one transaction.

        Derived tables are rebuilt from the event log, so they are written whole;
        readers see either every old table or every new one.
        """
        with self._transaction() as cur:
            for name, table in tables.items():
                _check_table_name(name)
                view = f"_patron_new_{name}"
                cur.register(view, table)
                try:
                    cur.execute(f'CREATE OR REPLACE TABLE "{name}" AS SELECT * FROM {view}')
                finally:
                    cur.unregister(view)

    def materialize(self, tables: dict[str, ir.Table]) -> None:
        """Compute Ibis expressions inside the engine and store each result as a derived
        table, all in one transaction: the data never passes through Python."""
        with self._transaction() as cur:
            for name, expr in tables.items():
                _check_table_name(name)
                sql = ibis.to_sql(expr, dialect="duckdb")
                cur.execute(f'CREATE OR REPLACE TABLE "{name}" AS {sql}')

    def json_values(self, table: ir.Table, column: str, paths: dict[str, str]) -> ir.Table:
        # DuckDB's multi-path extraction parses each document once for all paths, and its
        # optimiser computes the repeated list expression once per row.
        if not paths:
            return table
        values = _json_extract_strings(table[column], ibis.literal(["$." + p for p in paths.values()]))
        return table.mutate(**{name: values[i] for i, name in enumerate(paths)}).drop(column)

    def write(self, changes: list[Change], meta: dict[str, str] | None = None) -> None:
        """Apply changes to derived tables and meta values in one transaction (see
        :class:`~patron.store.base.Change`)."""
        with self._transaction() as cur:
            for number, change in enumerate(changes):
                _check_table_name(change.name)
                staged = f"_patron_change_{number}"
                try:
                    _apply_change(cur, change, staged)
                finally:
                    cur.execute(f"DROP TABLE IF EXISTS {staged}")
                    cur.execute(f"DROP TABLE IF EXISTS {staged}_keys")
                    with suppress(duckdb.Error):
                        cur.unregister(f"{staged}_arrow")
            for key, value in (meta or {}).items():
                cur.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [key, value])

    def append_table(self, name: str, table: pa.Table) -> None:
        """Append rows to a table of records people made (identity removals, ...),
        creating it with the rows' schema on first use."""
        _check_table_name(name)
        with self._transaction() as cur:
            _append_rows(cur, name, table)

    def table(self, name: str) -> ir.Table:
        """A derived table by name, as an Ibis table."""
        with self._in_use(), self._read_lock:
            return self._ibis.table(name)

    def has_table(self, name: str) -> bool:
        # Not Ibis's list_tables: it calls a DuckDB method deprecated in 1.5.
        rows = self._query(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = 'main' AND table_name = ?", [name]
        )
        return bool(rows)

    def update_failure(self, failed_id: int, field: str | None, reason: str) -> None:
        with self._transaction() as cur:
            cur.execute(
                "UPDATE failed_events SET field = ?, reason = ? WHERE failed_id = ?",
                [field, reason, failed_id],
            )

    # -- keys and meta -----------------------------------------------------------

    def add_key(self, record: KeyRecord) -> None:
        with self._transaction() as cur:
            cur.execute(
                "INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    record.name,
                    record.source_id,
                    record.scope,
                    record.key_hash,
                    record.key_prefix,
                    record.created_at,
                    record.revoked_at,
                ],
            )

    def find_key(self, key_hash: str) -> KeyRecord | None:
        rows = self._query("SELECT * FROM api_keys WHERE key_hash = ?", [key_hash])
        return KeyRecord(*rows[0]) if rows else None

    def list_keys(self) -> list[KeyRecord]:
        return [KeyRecord(*r) for r in self._query("SELECT * FROM api_keys ORDER BY name")]

    def revoke_key(self, name: str, at: datetime) -> bool:
        with self._transaction() as cur:
            rows = cur.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL "
                "RETURNING name",
                [at, name],
            ).fetchall()
        return bool(rows)

    def get_meta(self, key: str) -> str | None:
        rows = self._query("SELECT value FROM meta WHERE key = ?", [key])
        return rows[0][0] if rows else None

    def set_meta(self, key: str, value: str) -> None:
        with self._transaction() as cur:
            cur.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [key, value])

    def _query(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        with self._in_use():
            try:
                return self._cursor().execute(sql, params or []).fetchall()
            except duckdb.Error as error:
                raise self._unavailable(error) from None

    # -- lifecycle ---------------------------------------------------------------

    def checkpoint(self) -> None:
        with self._in_use():
            try:
                self._cursor().execute("CHECKPOINT")
            except duckdb.Error as error:
                raise self._unavailable(error) from None

    def close(self) -> None:
        with self._state:
            self._close_all()

    @contextmanager
    def splink_api(self) -> Iterator[Any]:
        """Splink's DuckDB API on this store's database, for probabilistic matching.

        The API gets its own connection, whose default catalog is a fresh in-memory
        database: Splink's working tables never land in the store file, while the
        store's tables stay readable by their qualified names. Leaving the ``with``
        block drops that database and closes the connection.

        Raises:
            MatchingUnavailable: Splink is not installed.
        """
        from patron.identity.splink_library import load_splink

        splink = load_splink()
        with self._in_use():
            with self._state:
                cur = self._con.cursor()
                self._cursors.append(cur)
            scratch = f"patron_match_{os.getpid()}_{threading.get_ident()}_{time.monotonic_ns()}"
            try:
                home = cur.execute("SELECT current_database()").fetchall()[0][0]
                cur.execute(f"ATTACH ':memory:' AS {scratch}")
                cur.execute(f"USE {scratch}")
            except duckdb.Error as error:
                raise self._unavailable(error) from None
            try:
                yield splink.DuckDBAPI(connection=cur)
            finally:
                with suppress(duckdb.Error):
                    cur.execute(f'USE "{home}"')
                    cur.execute(f"DETACH {scratch}")
                with suppress(duckdb.Error):
                    cur.close()
                with self._state:
                    if cur in self._cursors:
                        self._cursors.remove(cur)


def _cannot_write(path: Path) -> bool:
    """Whether ``path`` exists and this process may read it but not write it."""
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError as error:
        return error.errno in (errno.EACCES, errno.EPERM, errno.EROFS) and os.access(path, os.R_OK)
    os.close(fd)
    return False


_CORE_TABLES = frozenset({"events", "failed_events", "api_keys", "meta"})


def _check_table_name(name: str) -> None:
    """Derived and appendable tables may be named freely, but never over the core ones."""
    if not name.isidentifier() or name in _CORE_TABLES:
        raise ValueError(f"{name!r} is not a derived table name")


def _append_rows(cur: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> None:
    """Append rows to ``name`` inside the caller's transaction, creating the table from
    the rows' schema on first use."""
    cur.register("_patron_append_rows", table)
    try:
        cur.execute(f'CREATE TABLE IF NOT EXISTS "{name}" AS SELECT * FROM _patron_append_rows LIMIT 0')
        cur.execute(f'INSERT INTO "{name}" SELECT * FROM _patron_append_rows')
    finally:
        cur.unregister("_patron_append_rows")


@ibis.udf.scalar.builtin(name="json_extract_string")
def _json_extract_strings(doc: str, paths: dt.Array(dt.string)) -> dt.Array(dt.string):  # type: ignore[valid-type]
    """DuckDB's ``json_extract_string(doc, [paths])``: a list with the text at each path."""


def _apply_change(cur: duckdb.DuckDBPyConnection, change: Change, staged: str) -> None:
    name = change.name
    if isinstance(change, Drop):
        cur.execute(f'DROP TABLE IF EXISTS "{name}"')
        return
    if isinstance(change, DeleteRows):
        if _exists(cur, name):
            _stage(cur, f"{staged}_keys", change.keys)
            _delete_keyed(cur, name, change.key, f"{staged}_keys")
        return
    if isinstance(change, Replace):
        kind = "TEMP TABLE" if change.temporary else "TABLE"
        cur.execute(f'CREATE OR REPLACE {kind} "{name}" AS {_select(cur, staged, change.data)}')
        return
    if isinstance(change, Append):
        source = _select(cur, staged, change.data)
        cur.execute(f'CREATE TABLE IF NOT EXISTS "{name}" AS {source} LIMIT 0')
        cur.execute(f'INSERT INTO "{name}" BY NAME {source}')
        return
    # Computed before anything is deleted, so the new rows may read the rows they replace.
    _stage(cur, staged, change.data)
    cur.execute(f'CREATE TABLE IF NOT EXISTS "{name}" AS SELECT * FROM {staged} LIMIT 0')
    keys = staged
    if change.delete is not None:
        keys = f"{staged}_keys"
        _stage(cur, keys, change.delete)
    _delete_keyed(cur, name, change.key, keys)
    cur.execute(f'INSERT INTO "{name}" BY NAME SELECT * FROM {staged}')


def _select(cur: duckdb.DuckDBPyConnection, staged: str, data: pa.Table | ir.Table) -> str:
    """A SELECT for a change's rows: the expression's own SQL, or the registered Arrow table."""
    if isinstance(data, pa.Table):
        cur.register(f"{staged}_arrow", data)
        # DuckDB 1.5.6 loses every row of a large insert later in the same transaction
        # into a table created from an empty Arrow scan (the first segment of a store:
        # the empty history, then its entries); with LIMIT 0 it keeps them.
        scan = f"SELECT * FROM {staged}_arrow"
        return f"SELECT * FROM ({scan} LIMIT 0)" if data.num_rows == 0 else scan
    # In-memory tables inside the expression (ibis.memtable) are registered by name, as
    # Ibis does when it runs an expression itself.
    for node in data.op().find(ops.InMemoryTable):
        cur.register(node.name, node.data.to_pyarrow(node.schema))
    return str(ibis.to_sql(data, dialect="duckdb"))


def _exists(cur: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(
        cur.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = 'main' AND table_name = ?", [name]
        ).fetchall()
    )


def _delete_keyed(cur: duckdb.DuckDBPyConnection, name: str, key: tuple[str, ...], keys: str) -> None:
    columns = ", ".join(f'"{c}"' for c in key)
    if len(key) == 1:
        cur.execute(f'DELETE FROM "{name}" WHERE {columns} IN (SELECT {columns} FROM {keys})')
    else:  # a join: about twice as fast as a row-value IN
        matches = " AND ".join(f'"{name}"."{c}" = {keys}."{c}"' for c in key)
        cur.execute(f'DELETE FROM "{name}" USING {keys} WHERE {matches}')


def _stage(cur: duckdb.DuckDBPyConnection, name: str, data: pa.Table | ir.Table) -> None:
    """Compute a change's rows into a temporary table before anything is deleted, so an
    expression may read the very table it rewrites."""
    if isinstance(data, pa.Table):
        cur.register(f"{name}_arrow", data)
        try:
            cur.execute(f"CREATE TEMP TABLE {name} AS SELECT * FROM {name}_arrow")
        finally:
            cur.unregister(f"{name}_arrow")
    else:
        cur.execute(f"CREATE TEMP TABLE {name} AS {ibis.to_sql(data, dialect='duckdb')}")


def _duckdb_connect(
    path: Path, *, read_only: bool, checkpoint_threshold: str, memory_limit: str | None
) -> duckdb.DuckDBPyConnection:
    config: dict[str, Any] = {} if read_only else {"checkpoint_threshold": checkpoint_threshold}
    if memory_limit:
        config["memory_limit"] = memory_limit
    return duckdb.connect(str(path), read_only=read_only, config=config)


def _insert_new_events(cur: duckdb.DuckDBPyConnection, events: pa.Table) -> frozenset[tuple[str, str]]:
    """Insert rows all expected to be new; a stored key raises ConstraintException."""
    if not events.num_rows:
        return frozenset()
    cur.register("_patron_new_events", events)
    try:
        cur.execute(f"INSERT INTO events ({_EVENT_COLS}) SELECT {_EVENT_COLS} FROM _patron_new_events")
    finally:
        cur.unregister("_patron_new_events")
    keys = zip(events.column("source_id").to_pylist(), events.column("message_id").to_pylist(), strict=True)
    return frozenset(keys)


def _insert_events(cur: duckdb.DuckDBPyConnection, events: pa.Table) -> frozenset[tuple[str, str]]:
    """Insert the rows that are new by (source_id, message_id); return their keys."""
    if not events.num_rows:
        return frozenset()
    cur.register("_patron_new_events", events)
    try:
        rows = cur.execute(
            f"INSERT INTO events ({_EVENT_COLS}) SELECT {_EVENT_COLS} "
            "FROM _patron_new_events ON CONFLICT DO NOTHING "
            "RETURNING source_id, message_id"
        ).fetchall()
    finally:
        cur.unregister("_patron_new_events")
    return frozenset((r[0], r[1]) for r in rows)


def _short(error: BaseException) -> str:
    return str(error).strip().split("\n")[0][:300]


def _pid_in(text: str) -> str | None:
    marker = "PID "
    at = text.find(marker)
    if at < 0:
        return None
    digits = "".join(ch for ch in text[at + len(marker) : at + len(marker) + 12] if ch.isdigit())
    return digits or None
