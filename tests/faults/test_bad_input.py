"""Bad input over real HTTP: every refusal is JSON with ``code`` and ``message``, nothing
bad is stored as an event, and a gzip bomb cannot blow up the server's memory.

(The validator's rules are unit-tested elsewhere; this is what a client sees on the wire.)
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from patron.config import Settings
from patron.workspace import Workspace
from tests.faults.support import batch_body, failed_rows, new_ids, stored_ids, track
from tests.servers import PatronServer

JSON = {"content-type": "application/json"}
GZIP_JSON = {"content-type": "application/json", "content-encoding": "gzip"}


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PatronServer, str]]:
    store = tmp_path_factory.mktemp("bad-input") / "patron.duckdb"
    with Workspace(Settings(store=store)) as ws:
        key = ws.keys.create("bad-input", "write").key
    with PatronServer(store) as server:
        yield server, key


@pytest.fixture
def http(running: tuple[PatronServer, str]) -> Iterator[httpx.Client]:
    server, key = running
    with httpx.Client(base_url=server.url, auth=(key, ""), timeout=30) as client:
        yield client


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The refusal is JSON with code and message (RudderStack retries a 400 without them forever)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = orjson.loads(response.content)
    assert body["code"] == code and isinstance(body["message"], str) and body["message"]
    assert body["success"] is False
    return body


def _in_days(days: float) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


# -- the body as a whole --------------------------------------------------------------


def test_malformed_json_is_400(http: httpx.Client) -> None:
    body = _error(http.post("/v1/batch", content=b'{"batch": [', headers=JSON), 400, "invalid_json")
    assert "not valid JSON" in body["message"]
    _error(http.post("/v1/track", content=b"", headers=JSON), 400, "invalid_json")


def test_batch_over_500_kb_is_413(http: httpx.Client) -> None:
    messages = [track(m, pad=20_000) for m in new_ids("big", 30)]  # each under 32 KB, 600 KB in all
    body = batch_body(messages)
    assert len(body) > 500 * 1024
    refused = _error(http.post("/v1/batch", content=body, headers=JSON), 413, "payload_too_large")
    assert "500" in refused["message"] or "512000" in refused["message"]
    # The limit holds after decompression too: a 600 KB batch sent gzipped is still too large.
    small = gzip.compress(body)
    assert len(small) < 500 * 1024
    _error(http.post("/v1/batch", content=small, headers=GZIP_JSON), 413, "payload_too_large")


def test_bad_gzip_is_400(http: httpx.Client) -> None:
    body = batch_body([track(m) for m in new_ids("gz", 3)])
    _error(http.post("/v1/batch", content=body, headers=GZIP_JSON), 400, "invalid_gzip")  # not gzip
    truncated = gzip.compress(body)[:-12]
    _error(http.post("/v1/batch", content=truncated, headers=GZIP_JSON), 400, "invalid_gzip")
    _error(
        http.post("/v1/batch", content=body, headers={**JSON, "content-encoding": "br"}),
        415,
        "unsupported_encoding",
    )


def _peak_rss_kb(server: PatronServer) -> int:
    assert server.process is not None
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))


def test_gzip_bomb_is_413_without_inflating_it(running: tuple[PatronServer, str], http: httpx.Client) -> None:
    server, _ = running
    inflated = 400 * 1024 * 1024  # 400 MB of one repeated byte ...
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = b"[" * (1024 * 1024)
    bomb = b"".join(packer.compress(chunk) for _ in range(inflated // len(chunk))) + packer.flush()
    assert len(bomb) < 500 * 1024  # ... in under 500 KB on the wire
    before = _peak_rss_kb(server)
    for _ in range(3):
        _error(http.post("/v1/batch", content=bomb, headers=GZIP_JSON), 413, "payload_too_large")
    grew_mb = (_peak_rss_kb(server) - before) / 1024
    assert grew_mb < 64, f"the server's peak memory grew by {grew_mb:.0f} MB"
    assert http.get("/health").json()["status"] == "ok"


def test_unknown_or_missing_write_key_is_401(running: tuple[PatronServer, str]) -> None:
    server, _ = running
    body = batch_body([track("m-401")])
    unknown = httpx.post(f"{server.url}/v1/batch", content=body, headers=JSON, auth=("pk_not_a_key", ""))
    refused = _error(unknown, 401, "unauthorized")
    assert unknown.headers["www-authenticate"].lower().startswith("basic")
    assert "unknown" in refused["message"]
    _error(httpx.post(f"{server.url}/v1/batch", content=body, headers=JSON), 401, "unauthorized")
    in_body = orjson.dumps({"batch": [track("m-401")], "writeKey": "pk_wrong"})
    _error(httpx.post(f"{server.url}/v1/batch", content=in_body, headers=JSON), 401, "unauthorized")


# -- single messages ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "message", "field"),
    [
        ("/v1/track", {"userId": "u1"}, "event"),
        ("/v1/track", {"event": "Clicked"}, "userId"),
        ("/v1/track", {"userId": {"id": 1}, "event": "Clicked"}, "userId"),
        ("/v1/track", {"userId": "u1", "event": "Clicked", "properties": [1, 2]}, "properties"),
        ("/v1/identify", {"userId": "u1", "timestamp": "yesterday"}, "timestamp"),
        ("/v1/group", {"userId": "u1"}, "groupId"),
        ("/v1/alias", {"userId": "u1"}, "previousId"),
        ("/v1/track", {"userId": "u1", "event": "Clicked", "timestamp": "2099-01-01T00:00:00Z"}, "timestamp"),
    ],
    ids=[
        "no-event",
        "no-identity",
        "id-object",
        "properties-list",
        "bad-time",
        "no-group",
        "no-previous",
        "future",
    ],
)
def test_bad_single_message_is_400_naming_the_field(
    http: httpx.Client, path: str, message: dict[str, Any], field: str
) -> None:
    body = _error(http.post(path, json=message), 400, "invalid_message")
    assert body["field"] == field


def test_oversize_single_message_is_400(http: httpx.Client) -> None:
    body = _error(http.post("/v1/track", json=track("huge", pad=40_000)), 400, "invalid_message")
    assert "32768" in body["message"] and "bytes" in body["message"]


# -- a batch of good and bad messages -------------------------------------------------


def test_mixed_batch_stores_the_good_and_reports_the_bad(
    server: PatronServer, write_key: str, store_path: Path
) -> None:
    good = new_ids("good", 5)
    now = datetime.now(UTC)
    skewed_clock = (now + timedelta(days=30)).isoformat()
    batch: list[Any] = [
        track(good[0]),
        track("bad-size", pad=40_000),  # 1: over 32 KB
        track(good[1]),
        {**track("bad-future"), "timestamp": _in_days(3)},  # 3: 3 days ahead of sentAt
        {"type": "track", "userId": "u1", "messageId": "bad-event"},  # 4: no event
        "not an object",  # 5
        track(good[2]),
        # 7: a client whose clock is 30 days fast: timestamp and its sentAt agree, so the
        # time is corrected (Segment's rule) and the message is kept.
        {**track(good[3]), "timestamp": skewed_clock, "sentAt": skewed_clock},
        {**track("bad-type"), "type": "purchase"},  # 8
        {**track(good[4]), "userId": 42},  # an integer id is fine
    ]
    body = orjson.dumps({"batch": batch, "sentAt": now.isoformat()})
    assert len(body) < 500 * 1024
    with httpx.Client(auth=(write_key, ""), timeout=30) as http:
        answer = http.post(f"{server.url}/v1/batch", content=body, headers=JSON)
        assert answer.status_code == 200, answer.text
        result = answer.json()
        assert result["accepted"] == 5 and result["duplicates"] == 0
        rejected = {r["index"]: r for r in result["rejected"]}
        assert sorted(rejected) == [1, 3, 4, 5, 8]
        assert "32768" in rejected[1]["reason"]
        assert (
            rejected[3]["field"] == "timestamp" and "after the message was received" in rejected[3]["reason"]
        )
        assert rejected[4]["field"] == "event"
        assert "JSON object" in rejected[5]["reason"]
        assert rejected[8]["field"] == "type"
        # The same batch again: the good ones are duplicates, the bad ones are refused again.
        again = http.post(f"{server.url}/v1/batch", content=body, headers=JSON).json()
        assert again["accepted"] == 0 and again["duplicates"] == 5 and len(again["rejected"]) == 5
    server.stop()

    stored = stored_ids(store_path)
    assert set(stored) == set(good)
    assert max(stored.values()) == 1
    failed = failed_rows(store_path)
    assert sorted(r["message_index"] for r in failed) == [1, 1, 3, 3, 4, 4, 5, 5, 8, 8]
    by_index = {r["message_index"]: r for r in failed}
    assert by_index[3]["field"] == "timestamp" and by_index[8]["field"] == "type"
    assert orjson.loads(by_index[1]["raw"])["messageId"] == "bad-size"  # kept as received
    assert orjson.loads(by_index[5]["raw"]) == "not an object"
    assert all(r["status"] == "failed" and r["source_id"] == "test-source" for r in failed)
