"""The `patron keys` and `patron events` commands, run as real processes."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import httpx

from tests.servers import PatronServer, patron_command


def patron(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        patron_command(*args),
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=120,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert fragment in " ".join(lines), result.stderr
    assert lines[0].startswith("error:"), result.stderr


def test_keys_create_json_list_and_revoke(store_path: Path) -> None:
    created = patron("keys", "create", "--name", "web", "--scope", "write", "--json", "--store", str(store_path))
    assert created.returncode == 0, created.stderr
    payload = json.loads(created.stdout)
    assert set(payload) == {"key", "name", "scope"} and payload["name"] == "web" and payload["scope"] == "write"
    plain = patron("keys", "create", "--name", "bi", "--scope", "read", "--store", str(store_path))
    assert plain.returncode == 0 and plain.stdout.strip().startswith("pk_")
    listed = json.loads(patron("keys", "list", "--json", "--store", str(store_path)).stdout)
    assert [k["name"] for k in listed] == ["bi", "web"]
    assert all(payload["key"] not in json.dumps(k) for k in listed)
    assert patron("keys", "revoke", "web", "--store", str(store_path)).returncode == 0
    listed = json.loads(patron("keys", "list", "--json", "--store", str(store_path)).stdout)
    assert listed[1]["revoked_at"] is not None


def test_key_errors_are_one_line(store_path: Path) -> None:
    assert_one_line_error(patron("keys", "create", "--name", "x", "--scope", "root", "--store", str(store_path)), "scope 'root'")
    patron("keys", "create", "--name", "x", "--store", str(store_path))
    assert_one_line_error(patron("keys", "create", "--name", "x", "--store", str(store_path)), "already exists")
    assert_one_line_error(patron("keys", "revoke", "nope", "--store", str(store_path)), "no active key")


def test_patron_store_environment_and_default(tmp_path: Path) -> None:
    env_store = tmp_path / "from-env.duckdb"
    assert patron("keys", "create", "--name", "a", env={"PATRON_STORE": str(env_store)}).returncode == 0
    assert env_store.exists()
    # --store wins over the environment
    other = tmp_path / "flag.duckdb"
    patron("keys", "create", "--name", "b", "--store", str(other), env={"PATRON_STORE": str(env_store)})
    assert other.exists()
    # Without either, ./patron.duckdb in the working directory.
    env = {k: v for k, v in os.environ.items() if k != "PATRON_STORE"}
    result = subprocess.run(patron_command("events", "count", "--json"), capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "patron.duckdb").exists()


def test_events_commands_against_collected_data(store_path: Path, write_key: str) -> None:
    with PatronServer(store_path) as server:
        batch = [
            {"type": "identify", "userId": "u1"},
            {"type": "track", "userId": "u1", "event": "Order Completed"},
            {"type": "track", "userId": "u1"},
        ]
        assert httpx.post(f"{server.url}/v1/batch", json={"batch": batch}, auth=(write_key, "")).status_code == 200
        # While the server holds the store, other commands explain instead of crashing.
        assert_one_line_error(patron("events", "count", "--store", str(store_path)), "in use by another process")
    counts = json.loads(patron("events", "count", "--json", "--store", str(store_path)).stdout)
    assert counts["total"] == 2 and counts["failed"] == 1 and counts["by_source"] == {"test-source": 2}
    tail = patron("events", "tail", "-n", "1", "--json", "--store", str(store_path))
    [last] = [json.loads(line) for line in tail.stdout.splitlines()]
    assert last["event"] == "Order Completed" and json.loads(last["raw"])["userId"] == "u1"
    failed = [json.loads(line) for line in patron("events", "failed", "--json", "--store", str(store_path)).stdout.splitlines()]
    assert failed[0]["field"] == "event" and failed[0]["message_index"] == 2
    replay = json.loads(patron("events", "replay-failed", "--json", "--store", str(store_path)).stdout)
    assert replay == {"replayed": 0, "duplicates": 0, "still_failing": 1}
    human = patron("events", "count", "--store", str(store_path))
    assert "2 events, 1 failed" in human.stdout
    lake = store_path.parent / "lake"
    exported = patron("export", "events", "--to", str(lake), "--json", "--store", str(store_path))
    assert exported.returncode == 0, exported.stderr
    assert json.loads(exported.stdout)["events"] == 2 and list((lake / "events").glob("day=*/*.parquet"))
    assert_one_line_error(patron("export", "events", "--to", str(lake), "--store", str(store_path)), "already exists")


def test_usage_errors_exit_non_zero(store_path: Path) -> None:
    result = patron("events", "tail", "-n", "0", "--store", str(store_path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
