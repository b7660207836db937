"""A full disk: `patron serve` answers a clear 503, acknowledges nothing it did not store,
and resumes by itself once space is freed.

The disk fills for real as far as the server can tell: it runs with a file-size limit
(``RLIMIT_FSIZE``, with ``SIGXFSZ`` ignored), so DuckDB's writes past the limit fail with
the operating system's ``EFBIG``, the same path as ``ENOSPC``. The test frees "space" by
raising the running server's limit with ``prlimit``.

What DuckDB 1.5 does (see :mod:`patron.store.duckdb`): a commit whose log write fails is
rolled back and later commits that fit succeed; a checkpoint that cannot write the
database file invalidates the database, which the store then reopens once it can.
"""

from __future__ import annotations

import resource
import secrets
import signal
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import httpx
import orjson
import pytest

from patron.collect.spec import rows_to_table
from patron.collect.timestamps import utc_now
from patron.config import Settings
from patron.workspace import Workspace
from tests.faults.support import batch_body, new_ids, stored_ids, track
from tests.servers import PatronServer

PER_BATCH = 100


def _limit_file_size(limit: int) -> Callable[[], None]:
    hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]

    def preexec() -> None:  # runs in the server process before exec
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a killed process
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))

    return preexec


def _free_space(server: PatronServer) -> None:
    assert server.process is not None
    hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
    resource.prlimit(server.process.pid, resource.RLIMIT_FSIZE, (hard, hard))


def _messages(ids: list[str], blob: bool) -> list[dict[str, object]]:
    messages = [track(m, pad=0 if blob else 800) for m in ids]
    if blob:  # incompressible, so the database file grows as much as the log
        for message in messages:
            message["properties"]["blob"] = secrets.token_urlsafe(1200)
    return messages


class Sender:
    """Posts batches and remembers which messageIds were answered 200 and which 503."""

    def __init__(self, server: PatronServer, key: str, *, blob: bool = False) -> None:
        self.url = server.url
        self.http = httpx.Client(auth=(key, ""), timeout=30)
        self.blob = blob
        self.acked: set[str] = set()
        self.refused: dict[str, list[str]] = {}
        self.last: httpx.Response | None = None

    def post(self, ids: list[str]) -> httpx.Response:
        response = self.http.post(
            f"{self.url}/v1/batch",
            content=batch_body(_messages(ids, self.blob)),
            headers={"content-type": "application/json"},
        )
        self.last = response
        if response.status_code == 200:
            self.acked.update(ids)
        else:
            assert response.status_code == 503, response.text
            self.refused[ids[0]] = ids
        return response

    def fill(self, limit: int = 400) -> httpx.Response:
        """Post fresh batches until one is refused."""
        for _ in range(limit):
            response = self.post(new_ids("fill", PER_BATCH))
            if response.status_code == 503:
                return response
        raise AssertionError(f"no 503 after {limit} batches")

    def health(self) -> httpx.Response:
        return self.http.get(f"{self.url}/health")

    def __enter__(self) -> Sender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()


def _assert_clear_503(response: httpx.Response) -> None:
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/json"
    assert int(response.headers["retry-after"]) > 0
    body = orjson.loads(response.content)
    assert body["code"] == "store_unavailable"
    assert "cannot be written" in body["message"] and "was stored, so retrying is safe" in body["message"]


def _assert_store_matches(store: Path, sender: Sender) -> None:
    stored = stored_ids(store)
    assert sender.acked <= set(stored), f"{len(sender.acked - set(stored))} acknowledged messages lost"
    assert max(stored.values()) == 1
    never_stored = {m for ids in sender.refused.values() for m in ids} - sender.acked
    assert not never_stored & set(stored), "a message answered 503 (and never 200) is stored"


def test_full_disk_during_log_write_answers_503_then_recovers(store_path: Path, write_key: str) -> None:
    limit = store_path.stat().st_size + 600_000
    with ExitStack() as stack, PatronServer(store_path, preexec_fn=_limit_file_size(limit)) as server:
        sender = stack.enter_context(Sender(server, write_key))
        refused = sender.fill()
        _assert_clear_503(refused)
        assert "File too large" in refused.json()["message"]  # the OS error, passed on
        assert len(sender.acked) >= 2 * PER_BATCH
        for _ in range(3):  # it stays a clean 503, never a 500 or a hang
            _assert_clear_503(sender.post(new_ids("still-full", PER_BATCH)))
        health = sender.health()
        assert health.status_code == 503 and health.json()["status"] == "degraded"
        assert "cannot be written" in health.json()["last_error"]

        _free_space(server)
        # A batch that was answered 503 is sent again: it was not stored, so all of it is new.
        first_refused = next(iter(sender.refused.values()))
        retried = sender.post(first_refused)
        assert retried.status_code == 200
        assert retried.json()["accepted"] == PER_BATCH and retried.json()["duplicates"] == 0
        assert sender.post(new_ids("after", PER_BATCH)).status_code == 200
        assert sender.health().json()["status"] == "ok"

    _assert_store_matches(store_path, sender)


def _prefill(store: Path, events: int) -> None:
    """Grow the database file past a 16 MB checkpoint threshold, in process."""
    with Workspace(Settings(store=store)) as ws:
        for start in range(0, events, 1000):
            ids = [f"prefill-{i}" for i in range(start, start + 1000)]
            prepared = ws.collector.batch(
                {"batch": _messages(ids, blob=True)}, source_id="test-source", received_at=utc_now()
            )
            ws.store.append(rows_to_table(prepared.rows))


@pytest.mark.slow
def test_failed_checkpoint_invalidates_store_503_until_space_then_resumes(
    store_path: Path, write_key: str
) -> None:
    _prefill(store_path, 12_000)
    size = store_path.stat().st_size
    assert size > 17_000_000
    # The log may reach a 16 MB checkpoint threshold (DuckDB's own default, set here
    # explicitly), the checkpoint may not grow the database file: DuckDB invalidates it.
    limit = size + 256 * 1024
    small_log = {"PATRON_CHECKPOINT_THRESHOLD": "16MB"}
    with ExitStack() as stack, PatronServer(store_path, env=small_log, preexec_fn=_limit_file_size(limit)) as server:
        sender = stack.enter_context(Sender(server, write_key, blob=True))
        refused = sender.fill()
        _assert_clear_503(refused)
        assert "checkpoint" in refused.json()["message"]
        assert len(sender.acked) > 50 * PER_BATCH  # about 16 MB went into the log first
        # Still full: within and after the reopen interval, every write is a clean 503.
        _assert_clear_503(sender.post(new_ids("invalid", PER_BATCH)))
        time.sleep(1.2)
        _assert_clear_503(sender.post(new_ids("invalid", PER_BATCH)))
        health = sender.health()
        assert health.status_code == 503 and health.json()["status"] == "degraded"

        _free_space(server)
        time.sleep(1.2)  # the store reopens the database at most once a second
        first_refused = next(iter(sender.refused.values()))
        retried = sender.post(first_refused)
        assert retried.status_code == 200, retried.text
        assert retried.json()["accepted"] == PER_BATCH
        assert sender.post(new_ids("after", PER_BATCH)).status_code == 200
        assert sender.health().json()["status"] == "ok"

    _assert_store_matches(store_path, sender)
    # And a restart finds everything too (the log written before the failure included).
    with PatronServer(store_path) as server:
        assert httpx.get(f"{server.url}/health").json()["status"] == "ok"
    assert sender.acked <= set(stored_ids(store_path))
