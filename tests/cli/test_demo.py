"""`patron demo` run as the real command: loads once, prints the counts and a key once."""

from __future__ import annotations

import subprocess
from pathlib import Path

import orjson

from tests.servers import patron_command


def patron(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(patron_command(*args), capture_output=True, text=True, timeout=300)


def test_demo_loads_once(tmp_path: Path) -> None:
    store = tmp_path / "demo.duckdb"
    first = patron("demo", "--store", str(store))
    assert first.returncode == 0, first.stderr
    assert "Traceback" not in first.stderr
    out = " ".join(first.stdout.split())
    assert "69,659 orders from 23,570 customers, 1997-01-01 to 1998-06-30" in out
    assert 'Write key "demo"' in out and "pk_" in out
    assert "http://127.0.0.1:8000" in out and "patron events count" in out
    # Profiles are built on the first load, with a read key to look at them over HTTP.
    assert "Built 23,570 customer profiles" in out and 'read key "demo-read"' in out
    view = orjson.loads(patron("profiles", "show", "user_id:cdnow-3", "--json", "--store", str(store)).stdout)
    assert view["computed"]["order_count"] == 6 and view["computed"]["total_revenue"] == 156.46  # CDNOW's real record

    second = patron("demo", "--store", str(store), "--json")
    assert second.returncode == 0, second.stderr
    summary = orjson.loads(second.stdout)
    assert summary["already_loaded"] is True and summary["write_key"] is None
    assert summary["real"]["orders"] == 69_659

    third = patron("demo", "--store", str(store))
    assert "already loaded" in third.stdout and "patron keys create" in " ".join(third.stdout.split())
    count = orjson.loads(patron("events", "count", "--json", "--store", str(store)).stdout)
    assert count["by_source"]["demo:cdnow"] == 69_659
    assert count["total"] == 69_659 + sum(summary["synthetic"].values())
