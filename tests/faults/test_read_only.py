"""A store `patron serve` cannot write: a clear 503, nothing acknowledged, and no restart
needed once the permissions are fixed.

The behaviour chosen (see :mod:`patron.store.duckdb`): a store file that can be read but
not written is opened read-only; the server starts, ``/health`` says ``degraded`` with the
reason, and every write is answered 503 ``store_unavailable``. A store that cannot even be
read, or created, stops ``patron serve`` at start with a one-line error.

Permissions are real. Tests run as root in CI, and root ignores file modes, so the server
is started without the capabilities that let root do that (``CAP_DAC_OVERRIDE``,
``CAP_DAC_READ_SEARCH``, ``CAP_FOWNER``, dropped from its bounding set before exec):
it is then an ordinary owner of a 0444 file in a 0555 directory. (Switching to the
``nobody`` user instead would not work here: the interpreter lives under ``/root``,
which ``nobody`` cannot enter.) :func:`_assert_denied` proves the server process really
cannot write, so the test cannot pass by accident.
"""

from __future__ import annotations

import ctypes
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.faults.support import batch_body, new_ids, stored_ids, track
from tests.servers import PatronServer

_PR_CAPBSET_DROP = 24
_DAC_CAPS = (1, 2, 3)  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER


def _without_root_overrides() -> None:
    """preexec_fn: as root, give up the capabilities that bypass file permissions."""
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in _DAC_CAPS:
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def _assert_denied(path: Path, *, create: bool = False) -> None:
    """A process started like the server cannot write ``path`` (or create it)."""
    code = (
        "import os, sys\n"
        "try:\n"
        f"    os.open(sys.argv[1], {'os.O_RDWR | os.O_CREAT' if create else 'os.O_RDWR'}, 0o644)\n"
        "except PermissionError:\n"
        "    sys.exit(0)\n"
        "sys.exit(3)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(path)], preexec_fn=_without_root_overrides, check=False
    )
    assert result.returncode == 0, f"the server could still write {path}: the test would prove nothing"


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    """The store in a directory of its own; server logs go beside that directory."""
    (tmp_path / "store").mkdir()
    return tmp_path / "store" / "patron.duckdb"


def _server(store: Path, **kwargs: object) -> PatronServer:
    server = PatronServer(store, **kwargs)  # type: ignore[arg-type]
    server.log = store.parent.parent / f"serve.{server.port}.log"
    return server


@pytest.fixture
def locked_down(store_path: Path) -> Iterator[None]:
    """Restores writable modes afterwards, so the temporary directory can be removed."""
    yield
    store_path.parent.chmod(0o755)
    if store_path.exists():
        store_path.chmod(0o644)


def _post(http: httpx.Client, server: PatronServer, ids: list[str]) -> httpx.Response:
    return http.post(
        f"{server.url}/v1/batch",
        content=batch_body([track(m) for m in ids]),
        headers={"content-type": "application/json"},
    )


def _assert_503(response: httpx.Response, *words: str) -> None:
    assert response.status_code == 503, response.text
    body = orjson.loads(response.content)
    assert body["code"] == "store_unavailable"
    for word in words:
        assert word in body["message"], body["message"]
    assert int(response.headers["retry-after"]) > 0


def _stored_before(store: Path, key: str) -> list[str]:
    ids = new_ids("before", 50)
    with _server(store) as server, httpx.Client(auth=(key, "")) as http:
        assert _post(http, server, ids).status_code == 200
    return ids


def test_read_only_store_file_is_served_read_only_with_503_for_writes(
    store_path: Path, write_key: str, locked_down: None
) -> None:
    before = _stored_before(store_path, write_key)
    store_path.chmod(0o444)
    store_path.parent.chmod(0o555)
    _assert_denied(store_path)

    refused: list[str] = []
    with (
        _server(store_path, preexec_fn=_without_root_overrides) as server,
        httpx.Client(auth=(write_key, ""), timeout=10) as http,
    ):
        health = http.get(f"{server.url}/health")
        assert health.status_code == 503 and health.json()["status"] == "degraded"
        assert "read-only" in health.json()["last_error"]
        assert "read-only" in server.output()  # the operator is told at start

        for _ in range(3):
            ids = new_ids("refused", 20)
            refused += ids
            _assert_503(_post(http, server, ids), "read-only", "Permission denied")
        single = http.post(
            f"{server.url}/v1/track",
            json=track("single-refused"),
            headers={"content-type": "application/json"},
        )
        refused.append("single-refused")
        _assert_503(single, "read-only")

        # Fixing the permissions is enough: no restart.
        store_path.parent.chmod(0o755)
        store_path.chmod(0o644)
        time.sleep(1.2)
        again = _post(http, server, refused[:20])
        assert again.status_code == 200, again.text
        assert again.json()["accepted"] == 20  # the refused batch had not been stored
        assert http.get(f"{server.url}/health").json()["status"] == "ok"

    stored = stored_ids(store_path)
    assert set(before) | set(refused[:20]) == set(stored)
    assert max(stored.values()) == 1


def test_unwritable_directory_refuses_writes_with_503_until_fixed(
    store_path: Path, write_key: str, locked_down: None
) -> None:
    """The file may be written but its write-ahead log cannot be created next to it."""
    before = _stored_before(store_path, write_key)
    store_path.parent.chmod(0o555)
    _assert_denied(Path(f"{store_path}.wal"), create=True)

    with (
        _server(store_path, preexec_fn=_without_root_overrides) as server,
        httpx.Client(auth=(write_key, ""), timeout=10) as http,
    ):
        ids = new_ids("refused", 30)
        _assert_503(_post(http, server, ids), "Permission denied")
        health = http.get(f"{server.url}/health")
        assert health.status_code == 503 and health.json()["status"] == "degraded"

        store_path.parent.chmod(0o755)
        again = _post(http, server, ids)
        assert again.status_code == 200 and again.json()["accepted"] == 30
        assert http.get(f"{server.url}/health").json()["status"] == "ok"

    assert set(stored_ids(store_path)) == set(before) | set(ids)


def test_store_that_cannot_be_created_stops_serve_with_one_line_error(
    store_path: Path, locked_down: None
) -> None:
    store_path.parent.chmod(0o555)
    _assert_denied(store_path, create=True)
    server = _server(store_path, preexec_fn=_without_root_overrides)
    with pytest.raises(RuntimeError, match="exited with 1"):
        server.start(timeout=30)
    lines = [line for line in server.output().splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert str(store_path) in lines[0] and "cannot be written" in lines[0]
    assert "Traceback" not in server.output()
    assert not store_path.exists()
    assert stat.S_IMODE(store_path.parent.stat().st_mode) == 0o555
