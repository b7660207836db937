from __future__ import annotations

from datetime import datetime
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from patron.collect.importers import ImportFileError
from patron.collect.importers.events import import_events
from patron.collect.spec import MessageValidator, content_message_id
from patron.workspace import Workspace

from .conftest import StoredEvents


def _jsonl(path: Path, lines: list[object | str]) -> Path:
    path.write_text("\n".join(line if isinstance(line, str) else orjson.dumps(line).decode() for line in lines) + "\n")
    return path


def test_jsonl_stores_valid_messages_and_keeps_bad_lines(
    tmp_path: Path, workspace: Workspace, stored: StoredEvents
) -> None:
    path = _jsonl(
        tmp_path / "events.jsonl",
        [
            {"type": "track", "userId": "u1", "event": "Signed Up", "timestamp": "2024-05-01T10:00:00Z"},
            "{not json",
            "",
            {"type": "track", "userId": "u2"},
            {"type": "identify", "anonymousId": "a1", "traits": {"plan": "pro"}, "messageId": "m-7"},
        ],
    )
    report = workspace.imports.events(path)
    assert (report.read, report.stored, report.duplicates, report.rejected) == (4, 2, 0, 2)
    rows = stored.rows()
    assert [r["source_id"] for r in rows] == ["import", "import"]
    assert rows[0]["message_id"].startswith("content-")
    assert rows[1]["message_id"] == "m-7"
    failed = stored.failed()
    assert [(f["message_index"], f["field"]) for f in failed] == [(2, None), (4, "event")]
    assert "line 2 is not valid JSON" in failed[0]["reason"]
    assert failed[0]["raw"] == "{not json"


def test_reimporting_a_file_stores_nothing_new(tmp_path: Path, workspace: Workspace) -> None:
    path = _jsonl(tmp_path / "e.ndjson", [{"type": "track", "userId": f"u{i}", "event": "E"} for i in range(5)])
    first = workspace.imports.events(path, source_id="web-history")
    again = workspace.imports.events(path, source_id="web-history")
    assert (first.stored, first.duplicates) == (5, 0)
    assert (again.stored, again.duplicates) == (0, 5)
    assert workspace.events.counts().by_source == {"web-history": 5}


def test_json_array_and_batch_envelope(tmp_path: Path, workspace: Workspace, stored: StoredEvents) -> None:
    array = tmp_path / "array.json"
    array.write_bytes(orjson.dumps([{"type": "page", "userId": "u1", "name": "Home"}, 42]))
    batch = tmp_path / "batch.json"
    batch.write_bytes(
        orjson.dumps(
            {
                "batch": [{"type": "track", "userId": "u1", "event": "Clicked", "messageId": "b-1"}],
                "context": {"library": {"name": "exporter"}},
            }
        )
    )
    first = workspace.imports.events(array)
    second = workspace.imports.events(batch)
    assert (first.stored, first.rejected, second.stored) == (1, 1, 1)
    assert stored.failed()[0]["message_index"] == 1
    by_id = {r["message_id"]: r for r in stored.rows()}
    assert by_id["b-1"]["message"]["context"] == {"library": {"name": "exporter"}}


def test_parquet_messages_with_struct_columns(tmp_path: Path, workspace: Workspace, stored: StoredEvents) -> None:
    path = tmp_path / "events.parquet"
    table = pa.Table.from_pylist(
        [
            {"type": "track", "userId": "u1", "event": "Bought", "properties": {"sku": "A", "price": 3.5},
             "anonymousId": None, "timestamp": datetime(2024, 3, 1, 12, 30)},
            {"type": "track", "userId": None, "event": "Bought", "properties": {"sku": None, "price": 1.0},
             "anonymousId": "a9", "timestamp": None},
        ]
    )
    pq.write_table(table, path)
    report = workspace.imports.events(path)
    assert (report.stored, report.rejected) == (2, 0)
    rows = stored.rows()
    assert rows[0]["timestamp"] == datetime(2024, 3, 1, 12, 30)
    messages = [r["message"] for r in rows]
    assert messages[0]["properties"] == {"sku": "A", "price": 3.5}
    assert messages[0]["timestamp"] == "2024-03-01T12:30:00Z"
    assert "userId" not in messages[1] and messages[1]["properties"] == {"price": 1.0}


def test_chunks_are_appended_separately(tmp_path: Path, workspace: Workspace) -> None:
    path = _jsonl(tmp_path / "e.jsonl", [{"type": "track", "userId": "u", "event": f"E{i}"} for i in range(7)])
    validator = MessageValidator(
        max_message_bytes=32_000, max_future=workspace.settings.max_future, message_id_fallback=content_message_id
    )
    report = import_events(workspace.store, validator, path, chunk_size=3)
    assert (report.read, report.stored) == (7, 7)


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("missing.jsonl", None, "no such file"),
        ("events.txt", b"{}", "unknown file type"),
        ("empty.jsonl", b"", "the file is empty"),
        ("blank.jsonl", b"\n\n", "holds no messages"),
        ("object.json", b'{"type": "track"}', "must hold an array"),
        ("broken.json", b"[{", "not valid JSON"),
        ("broken.parquet", b"PAR1 nope", "not a readable Parquet file"),
    ],
)
def test_unusable_files_raise_one_clear_error(
    tmp_path: Path, workspace: Workspace, name: str, content: bytes | None, reason: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ImportFileError, match=reason):
        workspace.imports.events(path)
    assert workspace.events.counts().total == 0


def test_gzipped_jsonl(tmp_path: Path, workspace: Workspace) -> None:
    import gzip

    path = tmp_path / "events.jsonl.gz"
    path.write_bytes(gzip.compress(b'{"type":"track","userId":"u","event":"E"}\n'))
    assert workspace.imports.events(path).stored == 1
    (tmp_path / "fake.jsonl.gz").write_bytes(b"not gzip")
    with pytest.raises(ImportFileError, match="cannot be read"):
        workspace.imports.events(tmp_path / "fake.jsonl.gz")


def test_an_empty_source_is_refused(tmp_path: Path, workspace: Workspace) -> None:
    path = _jsonl(tmp_path / "e.jsonl", [{"type": "track", "userId": "u", "event": "E"}])
    with pytest.raises(ImportFileError, match="--source must not be empty"):
        workspace.imports.events(path, source_id=" ")
