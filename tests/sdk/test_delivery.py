"""The official Segment and RudderStack Python SDKs deliver to a real `patron serve`.

Each SDK runs in its normal mode (a background thread that batches up to 100 messages
per POST /v1/batch), with gzip on and off. Traffic passes through a forwarding proxy on
127.0.0.1 that only records what it sees, so the test can check the SDK really batched
and really gzipped. Then the server is stopped and the store is read: every message is
there exactly once, with the fields the SDK sent.
"""

from __future__ import annotations

import orjson
import pytest

from tests.faults.proxy import FaultProxy
from tests.faults.support import stored_rows
from tests.sdk.clients import SDKS, Errors, make_client, send_mix
from tests.servers import PatronServer

EVENTS = 300


@pytest.mark.parametrize("gzip", [True, False], ids=["gzip", "plain"])
@pytest.mark.parametrize("sdk", SDKS)
def test_sdk_batches_arrive_exactly_once(sdk: str, gzip: bool, server: PatronServer, write_key: str) -> None:
    errors = Errors()
    with FaultProxy(server.port) as proxy:
        client = make_client(sdk, write_key, proxy.url, gzip=gzip, on_error=errors)
        expected = send_mix(client, EVENTS, f"{sdk}-{gzip}")
        client.shutdown()  # flush the queue, then stop the consumer thread
        exchanges = proxy.snapshot()
    server.stop()

    assert errors.items == []
    assert len(expected) == EVENTS
    # Normal batching: several POST /v1/batch of at most 100 messages, not one per event.
    assert {(e.method, e.path) for e in exchanges} == {("POST", "/v1/batch")}
    assert 3 <= len(exchanges) <= EVENTS // 10
    assert all(0 < len(e.message_ids) <= 100 for e in exchanges)
    assert {e.headers.get("content-encoding") for e in exchanges} == ({"gzip"} if gzip else {None})
    assert all(e.upstream_status == 200 for e in exchanges)
    assert sum(e.upstream_body["accepted"] for e in exchanges if e.upstream_body) == EVENTS

    rows = stored_rows(server.store)
    by_id = {row["message_id"]: row for row in rows}
    assert len(rows) == len(by_id) == EVENTS
    assert set(by_id) == set(expected)
    for message_id, want in expected.items():
        row = by_id[message_id]
        for column, value in want.items():
            assert row[column] == value, (message_id, column)
        raw = orjson.loads(row["raw"])
        assert raw["context"]["library"]["name"] == "analytics-python"
        assert row["sent_at"] is not None and row["source_id"] == "test-source"
    identify = next(orjson.loads(r["raw"]) for r in rows if r["type"] == "identify")
    # Segment sends traits at the top level; RudderStack moves them into context.traits.
    traits = identify["traits"] if sdk == "segment" else identify["context"]["traits"]
    assert traits["plan"] == "pro"
    if sdk == "rudder":
        assert identify["channel"] == "server"
