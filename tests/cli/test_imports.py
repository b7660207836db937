"""`patron import ...` run as the real command: exit codes, summaries, one-line errors."""

from __future__ import annotations

import subprocess
from pathlib import Path

import orjson
import pytest

from tests.servers import patron_command


def patron(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(patron_command(*args), capture_output=True, text=True, timeout=120)


def test_import_orders_then_again(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    orders = tmp_path / "orders.csv"
    orders.write_text("OrderNo,Cust,Day,Amount\n1,c1,19970101,10\n2,c2,19970102,x\n")
    args = ("import", "orders", str(orders), "--map", "order_id=OrderNo", "--map", "customer_id=Cust",
            "--map", "date=Day", "--map", "revenue=Amount", "--date-format", "%Y%m%d", "--store", str(store))
    first = patron(*args)
    assert first.returncode == 0, first.stderr
    assert "stored 1, duplicates 0, rejected 1" in first.stdout
    again = patron(*args, "--json")
    assert again.returncode == 0, again.stderr
    summary = orjson.loads(again.stdout)
    assert (summary["stored"], summary["duplicates"], summary["rejected"]) == (0, 1, 1)
    assert summary["rejections"][0]["field"] == "revenue"


def test_import_events_and_customers(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    events = tmp_path / "events.jsonl"
    events.write_text('{"type":"track","userId":"u1","event":"E"}\nnot json\n')
    result = patron("import", "events", str(events), "--source", "backfill", "--store", str(store))
    assert result.returncode == 0, result.stderr
    assert "read 2 messages; stored 1, duplicates 0, rejected 1 (source backfill)" in result.stdout
    crm = tmp_path / "crm.csv"
    crm.write_text("Id,email\n1,a@example.com\n")
    result = patron("import", "customers", str(crm), "--id-column", "Id", "--store", str(store), "--json")
    assert result.returncode == 0, result.stderr
    assert orjson.loads(result.stdout)["stored"] == 1
    count = patron("events", "count", "--json", "--store", str(store))
    assert orjson.loads(count.stdout)["by_source"] == {"backfill": 1, "crm": 1}


@pytest.mark.parametrize(
    ("command", "name", "content", "expected"),
    [
        (["orders"], "missing.csv", None, "missing.csv: no such file"),
        (["orders"], "orders.xlsx", b"PK", "unknown file type; expected one of .csv, .parquet, .pq"),
        (["orders"], "empty.csv", b"", "the file is empty"),
        (["orders"], "ragged.csv", b"a,b\n1,2,3\n", "not a readable CSV file"),
        (["orders"], "bad.parquet", b"not parquet", "not a readable Parquet file"),
        (["orders", "--map", "order_id=No"], "o.csv", b"id,customer_id,timestamp\n1,c,2024-01-01\n",
         "no column 'No' for order_id"),
        (["orders", "--map", "order_id"], "o.csv", b"id\n1\n", "must look like field=Column"),
        (["events"], "e.json", b'{"a": 1}', "must hold an array of messages"),
        (["customers", "--id-column", "Nope"], "c.csv", b"Id,email\n1,a@example.com\n",
         "no column 'Nope' for --id-column"),
    ],
)
def test_bad_files_give_one_line_and_exit_1(
    tmp_path: Path, command: list[str], name: str, content: bytes | None, expected: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    store = tmp_path / "s.duckdb"
    result = patron("import", command[0], str(path), *command[1:], "--store", str(store))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], result.stderr
    if content is None or name.endswith(".xlsx"):
        assert not store.exists()  # a wrong path does not create a store
