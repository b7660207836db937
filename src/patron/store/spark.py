"""The Spark store: the lake's event log and the derived tables, computed by Apache Spark.

Selected with ``PATRON_BACKEND=spark`` (or ``patron --backend spark ...``), with the
lake's folder as the store (``PATRON_STORE=/data/lake``). The event log is the lake's
``events/day=.../*.parquet`` (store/lake.py), written by ``patron export events``
from the collection service's embedded stores; derived tables and meta values are
versioned Parquet folders named by the catalog (store/catalog.py). Every computation
above ``store/`` is the same Ibis expression as on DuckDB, run by Ibis's PySpark backend;
what Spark spells differently is here:

* reading values out of JSON text: ``get_json_object`` per path (DuckDB reads every path
  in one parse);
* the entries of a JSON object (``ToJSONMap``, which Ibis 12 does not compile for
  PySpark): ``from_json(text, 'map<string,variant>')`` with each value written back
  as JSON text, so a string keeps its quotes as on DuckDB;
* writes: each change becomes new Parquet folders and one catalog commit, so a write is
  all or nothing as a DuckDB transaction is.

What this store does not do: collect. The HTTP collection service and its durable
writer stay on the embedded store (one machine takes tens of thousands of events a
second); their events reach the lake by export (README "Running on Spark"). Appends,
API keys, erasure and replay of failed messages raise :class:`NotOnThisStore`.

pyspark is an optional dependency (``pip install 'patron[spark]'``), imported only here.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import ibis
import pyarrow as pa
import pyarrow.parquet as pq

from patron.store.base import Append, AppendResult, Change, DeleteRows, Drop, KeyRecord, Replace, ReplaceRows
from patron.store.catalog import Catalog, Snapshot
from patron.store.exceptions import BackendUnavailable, LakeError, NotOnThisStore, StoreUnavailable
from patron.store.lake import EVENTS_DIR, MANIFEST, committed_files
from patron.store.tables import FAILED_SCHEMA

if TYPE_CHECKING:
    import ibis.expr.types as ir

DEFAULT_MASTER = "local[*]"
EVENTS_VIEW = "events"
FAILED_VIEW = "failed_events"
_SPLINK_JAR_HINT = "splink's similarity jar"


def load_pyspark() -> Any:
    """The pyspark module, or a one-line error with the install command."""
    try:
        import pyspark
    except ImportError:
        raise BackendUnavailable(
            "the Spark backend needs pyspark and Java 17: pip install 'patron[spark]'"
        ) from None
    return pyspark


def spark_session(master: str = DEFAULT_MASTER, conf: dict[str, str] | None = None) -> Any:
    """The process's Spark session, started with Patron's settings when there is none.

    Under ``spark-submit`` (or on Databricks) the session and its master come from the
    platform; ``master`` only applies when this process starts Spark itself. Workers run
    this interpreter, so they find the same packages; timestamps are UTC, as in the log.
    """
    load_pyspark()
    from pyspark import SparkConf
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    if master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder.appName("patron")
    if not SparkConf().contains("spark.master"):
        builder = builder.master(master)
    settings = {
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.warehouse.dir": tempfile.mkdtemp(prefix="patron-spark-warehouse-"),
        # Spark turns Arrow batches into rows without pandas in between.
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.parquet.inferTimestampNTZ.enabled": "true",
    }
    jar = _splink_jar()
    if jar is not None:
        settings["spark.jars"] = jar
    if master.startswith("local["):
        # Spark's default, 200 shuffle partitions, is for clusters: on a few local cores
        # most of a small job's time would go to scheduling empty tasks.
        cores = master[len("local[") : -1]
        threads = int(cores) if cores.isdigit() else (os.cpu_count() or 2)
        settings["spark.sql.shuffle.partitions"] = str(2 * threads)
    settings.update(conf or {})
    for key, value in settings.items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
    except Exception as error:  # Java missing, a port refused: Spark's own message, one line
        raise BackendUnavailable(f"Spark did not start ({_short(error)}); Java 17 must be on PATH") from None
    session.sparkContext.setLogLevel("ERROR")
    return session


def _splink_jar() -> str | None:
    """Splink's jar of string similarity functions, when splink is installed: the
    probabilistic matcher's comparisons call them on Spark."""
    try:
        from splink.backends.spark import similarity_jar_location
    except ImportError:
        return None
    path: str = similarity_jar_location()
    return path if Path(path).exists() else None


class SparkStore:
    """A :class:`~patron.store.base.Store` on a lake, computed by Spark."""

    graph_in_engine = True  # the driver of a cluster cannot hold a large graph

    def __init__(self, path: Path, session: Any) -> None:
        self.path = path
        self._session = session
        self._catalog = Catalog(path)
        self._scratch = self._catalog.root / "scratch"
        shutil.rmtree(self._scratch / "memtables", ignore_errors=True)
        self._ibis = _backend(session, self._scratch / "memtables")
        self._lock = threading.RLock()
        self._snapshot = Snapshot(-2)
        self._views: dict[str, tuple[str, ...]] = {}
        self._events_files: tuple[str, ...] | None = None
        checkpoints = self._scratch / "checkpoints"
        checkpoints.mkdir(parents=True, exist_ok=True)
        session.sparkContext.setCheckpointDir(str(checkpoints))

    @classmethod
    def open(cls, path: Path, *, master: str = DEFAULT_MASTER, conf: dict[str, str] | None = None) -> SparkStore:
        """Open the lake at ``path`` (a folder with ``events/``, as export writes it)."""
        path = Path(path)
        if not path.is_dir():
            raise LakeError(
                f"{path} is not a lake folder; with PATRON_BACKEND=spark the store is a folder written by "
                "`patron export events --to PATH`"
            )
        if not (path / EVENTS_DIR).is_dir() and not (path / MANIFEST).exists():
            raise LakeError(f"{path} holds no events/ folder; write one with `patron export events --to {path}`")
        return cls(path.resolve(), spark_session(master, conf))

    @property
    def session(self) -> Any:
        """The Spark session (for Splink and for tests)."""
        return self._session

    # -- the catalog ---------------------------------------------------------------

    def _current(self) -> Snapshot:
        """The newest committed snapshot, with every table's view pointing at it."""
        with self._lock:
            snapshot = self._catalog.current()
            if snapshot.version != self._snapshot.version:
                self._point_views(snapshot)
                self._snapshot = snapshot
            return self._snapshot

    def _point_views(self, snapshot: Snapshot) -> None:
        for name in [n for n in self._views if n not in snapshot.tables]:
            self._session.catalog.dropTempView(name)
            del self._views[name]
        for name, folders in snapshot.tables.items():
            self._point_view(name, folders)

    def _point_view(self, name: str, folders: list[str]) -> None:
        paths = tuple(str(self._catalog.path(f)) for f in folders)
        if self._views.get(name) != paths:
            self._session.read.parquet(*paths).createOrReplaceTempView(name)
            self._views[name] = paths

    @contextmanager
    def _writing(self) -> Iterator[Snapshot]:
        """One write: the process lock and the lake's lock file held, a working copy of
        the newest snapshot handed out; views restored when the write fails."""
        with self._lock, open(self._catalog.root / "lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            base = self._current()
            work = base.copy()
            try:
                yield work
            except BaseException:
                self._point_views(base)
                raise

    # -- events ----------------------------------------------------------------------

    def events(self) -> ir.Table:
        """The lake's committed event files (listed again on every call: appends may
        have committed more)."""
        folder = self.path / EVENTS_DIR
        files = tuple(str(p) for p in committed_files(self.path))
        if not files:
            raise LakeError(f"the lake {self.path} holds no events yet; write them with `patron export events`")
        with self._lock:
            if files != self._events_files:
                reader = self._session.read.option("basePath", str(folder))
                reader.parquet(*files).createOrReplaceTempView(EVENTS_VIEW)
                self._events_files = files
        return self._ibis.table(EVENTS_VIEW).drop("day")

    def failed_events(self) -> ir.Table:
        """Empty: rejected messages stay in the collection service's store."""
        schema = FAILED_SCHEMA.append(pa.field("failed_id", pa.int64()))
        schema = schema.append(pa.field("status", pa.string())).append(pa.field("replayed_at", pa.timestamp("us")))
        pq_folder = self._scratch / FAILED_VIEW
        if not pq_folder.exists():
            pq_folder.mkdir(parents=True)
            pq.write_table(schema.empty_table(), pq_folder / "part-0.parquet")
        with self._lock:
            self._session.read.parquet(str(pq_folder)).createOrReplaceTempView(FAILED_VIEW)
        return self._ibis.table(FAILED_VIEW)

    def _refused(self, what: str) -> NotOnThisStore:
        return NotOnThisStore(
            f"the Spark store reads the lake and does not {what}; do it on the collection service's "
            "store (PATRON_BACKEND=duckdb) and export its events to the lake"
        )

    def append(self, events: pa.Table, failed: pa.Table | None = None) -> AppendResult:
        raise self._refused("collect events")

    def mark_replayed(self, failed_ids: list[int], events: pa.Table) -> AppendResult:
        raise self._refused("replay failed messages")

    def apply_erasure(
        self, tombstones: pa.Table, event_keys: pa.Table, failed_ids: list[int], identifiers: pa.Table, receipt: pa.Table
    ) -> None:
        raise self._refused("erase people (erase on the collection store, then export the lake again)")

    def export_events(
        self, folder: Path, *, after_seq: int | None = None, seq_offset: int | None = None, prefix: str = "part"
    ) -> dict[str, Any]:
        raise self._refused("export events (it reads them from the lake)")

    def update_failure(self, failed_id: int, field: str | None, reason: str) -> None:
        raise self._refused("replay failed messages")

    def add_key(self, record: KeyRecord) -> None:
        raise self._refused("keep API keys")

    def find_key(self, key_hash: str) -> KeyRecord | None:
        return None

    def list_keys(self) -> list[KeyRecord]:
        return []

    def revoke_key(self, name: str, at: datetime) -> bool:
        raise self._refused("keep API keys")

    # -- reading -----------------------------------------------------------------------

    def _dataframe(self, expr: ir.Expr) -> Any:
        """The Spark DataFrame computing ``expr`` (memtables and UDFs registered first)."""
        self._current()
        table = expr.as_table()
        self._ibis._run_pre_execute_hooks(table)
        return self._session.sql(self._ibis.compile(table))

    def execute(self, expr: ir.Expr) -> Any:
        """Run an expression into Python values, as the DuckDB store does: a scalar (``None``
        for a NULL), a column as a list, a table as a list of rows."""
        import ibis.expr.types as ir

        result = self.to_pyarrow(expr.as_table())
        if isinstance(expr, ir.Scalar):
            return result.column(0)[0].as_py()
        if isinstance(expr, ir.Column):
            return result.column(0).to_pylist()
        return result.to_pylist()

    def to_pyarrow(self, expr: ir.Table) -> pa.Table:
        table = self._dataframe(expr).toArrow()
        schema = expr.schema().to_pyarrow()
        return table.rename_columns(schema.names).cast(schema)

    def table(self, name: str) -> ir.Table:
        snapshot = self._current()
        if name not in snapshot.tables:
            raise KeyError(name)
        return self._ibis.table(name)

    def has_table(self, name: str) -> bool:
        return name in self._current().tables

    def get_meta(self, key: str) -> str | None:
        return self._current().meta.get(key)

    def set_meta(self, key: str, value: str) -> None:
        self.write([], {key: value})

    def json_values(self, table: ir.Table, column: str, paths: dict[str, str]) -> ir.Table:
        if not paths:
            return table
        # Each message parsed once into Spark's binary variant, then read by path:
        # a ``get_json_object`` per path would parse it once per path (2.8x slower).
        parsed = table.mutate(**{column: _parse_json(table[column])})
        doc = parsed[column]
        return parsed.select(
            *(c for c in table.columns if c != column),
            **{name: _variant_get(doc, "$." + path, "string") for name, path in paths.items()},
        )

    # -- writing -----------------------------------------------------------------------

    def write(self, changes: list[Change], meta: dict[str, str] | None = None) -> None:
        """Apply changes as new Parquet folders and commit them in one catalog version."""
        created: list[str] = []
        temporary: set[str] = set()
        try:
            with self._writing() as work:
                for change in changes:
                    _check_table_name(change.name)
                    self._apply(work, change, created)
                    if isinstance(change, Replace) and change.temporary:
                        temporary.add(change.name)
                    elif isinstance(change, Drop):
                        temporary.discard(change.name)
                for name in temporary:  # a temporary table never outlives its write
                    work.tables.pop(name, None)
                work.meta.update(meta or {})
                self._snapshot = self._catalog.commit(work)
                self._point_views(self._snapshot)
        except LakeError:
            self._catalog.discard(created)
            raise
        except OSError as error:
            self._catalog.discard(created)
            raise StoreUnavailable(self.path, error.strerror or str(error)) from None
        except BaseException:
            self._catalog.discard(created)
            raise

    def _apply(self, work: Snapshot, change: Change, created: list[str]) -> None:
        name = change.name
        if isinstance(change, Drop):
            work.tables.pop(name, None)
            self._drop_view(name)
            return
        existing = name in work.tables
        if isinstance(change, Replace):
            work.tables[name] = [self._stage(name, change.data, created)]
        elif isinstance(change, Append):
            data = self._conformed(name, change.data) if existing else change.data
            work.tables[name] = [*work.tables.get(name, []), self._stage(name, data, created)]
        elif isinstance(change, DeleteRows):
            if not existing:
                return
            kept = self._without(name, change.key, self._staged_keys(name, change.keys, change.key, created))
            work.tables[name] = [self._stage(name, kept, created)]
        elif isinstance(change, ReplaceRows):
            # The new rows first: they may read the very rows they replace.
            data = self._conformed(name, change.data) if existing else change.data
            rows = self._stage(name, data, created)
            if not existing:
                work.tables[name] = [rows]
            else:
                delete = change.delete if change.delete is not None else self._read(rows)
                keys = self._staged_keys(name, delete, change.key, created)
                work.tables[name] = [self._stage(name, self._without(name, change.key, keys), created), rows]
        self._point_view(name, work.tables[name])

    def _drop_view(self, name: str) -> None:
        if name in self._views:
            self._session.catalog.dropTempView(name)
            del self._views[name]

    def _read(self, relative: str) -> ir.Table:
        view = "_patron_staged_" + relative.rsplit("/", 1)[-1].replace("-", "_")
        self._session.read.parquet(str(self._catalog.path(relative))).createOrReplaceTempView(view)
        return self._ibis.table(view)

    def _staged_keys(self, name: str, keys: pa.Table | ir.Table, key: tuple[str, ...], created: list[str]) -> ir.Table:
        selected = keys.select(list(key)) if isinstance(keys, pa.Table) else keys.select(*key)
        return self._read(self._stage(name, selected, created))

    def _without(self, name: str, key: tuple[str, ...], keys: ir.Table) -> ir.Table:
        current = self._ibis.table(name)
        renamed = keys.select(**{f"_k_{c}": keys[c] for c in key}).distinct()
        return current.anti_join(renamed, [current[c] == renamed[f"_k_{c}"] for c in key])

    def _conformed(self, name: str, data: pa.Table | ir.Table) -> pa.Table | ir.Table:
        """``data`` with the stored table's columns in its order and types (DuckDB's
        ``INSERT BY NAME`` does the same)."""
        schema = self._ibis.table(name).schema()
        if isinstance(data, pa.Table):
            return data.select(list(schema.names)).cast(schema.to_pyarrow())
        return data.select(*[data[c].cast(t) for c, t in schema.items()])

    def _stage(self, name: str, data: pa.Table | ir.Table, created: list[str]) -> str:
        """Write ``data`` into a new folder of ``name``; returns the folder's catalog name."""
        relative, folder = self._catalog.new_folder(name)
        created.append(relative)
        if isinstance(data, pa.Table):
            folder.mkdir(parents=True)
            pq.write_table(data, folder / "part-00000.parquet")
        else:
            frame = self._dataframe(data)
            frame.write.parquet(str(folder))
            if not any(folder.glob("*.parquet")):  # an empty result: keep its schema readable
                pq.write_table(data.schema().to_pyarrow().empty_table(), folder / "part-00000.parquet")
        return relative

    def append_table(self, name: str, table: pa.Table) -> None:
        self.write([Append(name, table)])

    def replace_tables(self, tables: dict[str, pa.Table]) -> None:
        self.write([Replace(name, table) for name, table in tables.items()])

    def materialize(self, tables: dict[str, ir.Table]) -> None:
        self.write([Replace(name, expr) for name, expr in tables.items()])

    # -- lifecycle ---------------------------------------------------------------------

    def checkpoint(self) -> None:
        """Nothing to fold: every commit is already in its files."""

    def close(self) -> None:
        """Drop this store's views; the Spark session stays (it is the process's)."""
        with self._lock:
            for name in [*self._views, EVENTS_VIEW, FAILED_VIEW]:
                with suppress(Exception):
                    self._session.catalog.dropTempView(name)
            self._views.clear()
            self._events_files = None
            self._snapshot = Snapshot(-2)

    @contextmanager
    def splink_api(self) -> Iterator[Any]:
        """Splink's Spark API on this store's session (the session must carry splink's
        similarity jar: :func:`spark_session` adds it when splink is installed)."""
        from patron.identity.splink_library import load_splink

        load_splink()
        from splink import SparkAPI

        yield SparkAPI(spark_session=self._session, break_lineage_method="parquet")


def _check_table_name(name: str) -> None:
    if not name.isidentifier() or name in (EVENTS_VIEW, FAILED_VIEW, "meta", "api_keys"):
        raise ValueError(f"{name!r} is not a derived table name")


@ibis.udf.scalar.builtin(name="parse_json")
def _parse_json(doc: str) -> str:  # type: ignore[empty-body]
    """Spark's ``parse_json(text)``: a variant (typed ``string`` for Ibis, which has no
    variant type; only :func:`_variant_get` reads it)."""


@ibis.udf.scalar.builtin(name="variant_get")
def _variant_get(value: str, path: str, to: str) -> str:  # type: ignore[empty-body]
    """Spark's ``variant_get(v, '$.a.b[0]', 'string')``: the text at a path, strings
    unquoted, objects and arrays as JSON text, JSON ``null`` as NULL."""


def _backend(session: Any, memtables: Path) -> Any:
    """Ibis's PySpark backend on ``session``, with Patron's compiler, and in-memory
    tables handed to Spark as Parquet (Ibis goes through pandas, where a missing string
    would become the text 'NaN')."""
    from ibis.backends.pyspark import Backend

    _ = ibis.pyspark  # loading the backend through ibis registers its options (ibis.options.pyspark)

    class PatronSparkBackend(Backend):
        compiler = _compiler()

        def _register_in_memory_table(self, op: Any) -> None:
            folder = memtables / op.name
            if not folder.exists():
                folder.mkdir(parents=True)
                pq.write_table(op.data.to_pyarrow(op.schema), folder / "part-00000.parquet")
            self._session.read.parquet(str(folder)).createOrReplaceTempView(op.name)

    return PatronSparkBackend().connect(session)


def _compiler() -> Any:
    """Ibis's PySpark compiler with JSON handled by Spark's own functions (module
    docstring): JSON values are JSON text, as on DuckDB, and nothing runs in Python."""
    import ibis.expr.operations as ops
    import sqlglot as sg
    import sqlglot.expressions as sge
    from ibis.backends.sql.compilers.pyspark import PySparkCompiler

    def call(name: str, *args: Any) -> Any:
        """Spark's function ``name`` as written: sqlglot rewrites some (``parse_json``
        disappears from its Spark output)."""
        return sge.Anonymous(this=name, expressions=list(args))

    def as_text(*names: str) -> Any:
        """The lambda ``(..., v) -> to_json(v)``: a parsed value written back as JSON text."""
        v = sg.to_identifier("v")
        return sge.Lambda(this=call("to_json", v), expressions=[*map(sg.to_identifier, names)])

    unwrapped = (ops.UnwrapJSONString, ops.UnwrapJSONInt64, ops.UnwrapJSONFloat64, ops.UnwrapJSONBoolean)

    class PatronSparkCompiler(PySparkCompiler):
        # Ibis runs these as Python functions on the workers; they are Spark SQL below.
        SIMPLE_OPS: ClassVar[dict[Any, str]] = {op: name for op, name in PySparkCompiler.SIMPLE_OPS.items() if op not in unwrapped}

        def visit_ScalarUDF(self, op: Any, **kw: Any) -> Any:
            # Builtins as written: sqlglot would drop ``parse_json`` (above).
            return call(self.__sql_name__(op), *kw.values())

        def visit_ToJSONMap(self, op: Any, *, arg: Any) -> Any:
            entries = call("from_json", arg, sge.convert("map<string,variant>"))
            return call("transform_values", entries, as_text("k", "v"))

        def visit_ToJSONArray(self, op: Any, *, arg: Any) -> Any:
            return call("transform", call("from_json", arg, sge.convert("array<variant>")), as_text("v"))

        def visit_JSONGetItem(self, op: Any, *, arg: Any, index: Any) -> Any:
            path = self.f.format_string("$[%s]" if op.index.dtype.is_integer() else "$.%s", index)
            return call("to_json", call("variant_get", call("parse_json", arg), path))

        def _unwrap(self, arg: Any, kinds: tuple[str, ...], to: str) -> Any:
            value = call("parse_json", arg)
            kind = call("schema_of_variant", value)
            matches = sg.or_(*(kind.eq(sge.convert(k)) for k in kinds))
            return self.if_(matches, call("variant_get", value, sge.convert("$"), sge.convert(to)), sge.Null())

        def visit_UnwrapJSONString(self, op: Any, *, arg: Any) -> Any:
            return self._unwrap(arg, ("STRING",), "string")

        def visit_UnwrapJSONInt64(self, op: Any, *, arg: Any) -> Any:
            return self._unwrap(arg, ("TINYINT", "SMALLINT", "INT", "BIGINT"), "bigint")

        def visit_UnwrapJSONBoolean(self, op: Any, *, arg: Any) -> Any:
            return self._unwrap(arg, ("BOOLEAN",), "boolean")

        def visit_UnwrapJSONFloat64(self, op: Any, *, arg: Any) -> Any:
            numbers = ("TINYINT", "SMALLINT", "INT", "BIGINT", "FLOAT", "DOUBLE")
            value = call("parse_json", arg)
            kind = call("schema_of_variant", value)
            number = sg.or_(*(kind.eq(sge.convert(k)) for k in numbers), kind.like(sge.convert("DECIMAL%")))
            return self.if_(number, call("variant_get", value, sge.convert("$"), sge.convert("double")), sge.Null())

    return PatronSparkCompiler()


def _short(error: BaseException) -> str:
    return str(error).strip().split("\n")[0][:300]
