"""Retries provoked by a fault-injecting proxy still store every event exactly once.

The proxy forwards some batches to Patron (which stores them) and then tells the SDK
503, or cuts the connection before the answer, or drops the request before it reaches
Patron. The SDK sends those batches again with the same messageIds; Patron must answer
the copies as duplicates and keep one row per message.
"""

from __future__ import annotations

import pytest

from tests.faults.proxy import Action, FaultProxy, faults_at
from tests.faults.support import stored_ids
from tests.sdk.clients import SDKS, Errors, make_client, send_mix
from tests.servers import PatronServer

EVENTS = 240
PER_BATCH = 20

FAULTS = {
    1: Action.FORWARD_THEN_503,  # stored, but the SDK hears 503 ...
    2: Action.FORWARD_THEN_503,  # ... and again on its first retry
    4: Action.FORWARD_THEN_DROP,  # stored, the answer is lost
    6: Action.DROP,  # never reaches Patron
    8: Action.FORWARD_THEN_503,
}


@pytest.mark.parametrize("gzip", [True, False], ids=["gzip", "plain"])
@pytest.mark.parametrize("sdk", SDKS)
def test_retried_batches_are_stored_once(sdk: str, gzip: bool, server: PatronServer, write_key: str) -> None:
    faults = dict(FAULTS)
    if sdk == "segment":
        # Segment honours Retry-After: it puts the batch back on its queue and waits.
        faults[10] = Action.FORWARD_THEN_503_RETRY_AFTER
    errors = Errors()
    with FaultProxy(server.port, faults_at(faults)) as proxy:
        client = make_client(sdk, write_key, proxy.url, gzip=gzip, upload_size=PER_BATCH, on_error=errors)
        expected = send_mix(client, EVENTS, f"retry-{sdk}-{gzip}")
        client.shutdown()
        exchanges = proxy.snapshot()
        sent = proxy.sent_counts()
    server.stop()

    assert errors.items == [], "the SDK gave up on a batch"
    # Every fault was injected, and each faulted batch came back with the same messageIds.
    injected = [e for e in exchanges if e.action is not Action.FORWARD]
    assert [e.number for e in injected] == sorted(faults)
    for fault in injected:
        retried = [
            e for e in exchanges if e.number > fault.number and set(e.message_ids) & set(fault.message_ids)
        ]
        assert retried, f"request {fault.number} ({fault.action.value}) was never retried"
        assert set(fault.message_ids) <= {m for e in retried for m in e.message_ids}
    resent = {m for m, n in sent.items() if n > 1}
    assert len(resent) >= (len(faults) - 1) * PER_BATCH // 2
    if sdk == "segment":
        assert max(e.retry_count for e in exchanges) >= 2  # X-Retry-Count on the second retry

    # Patron saw the copies of batches it had stored and called them duplicates.
    forwarded_twice = {m for e in injected if e.action is not Action.DROP for m in e.message_ids}
    duplicates = sum(
        e.upstream_body["duplicates"]
        for e in exchanges
        if e.upstream_status == 200 and e.upstream_body is not None
    )
    assert duplicates >= len(forwarded_twice) > 0
    assert all(e.upstream_status == 200 for e in exchanges if e.forwarded)

    stored = stored_ids(server.store)
    assert set(stored) == set(expected)
    assert max(stored.values()) == 1
    assert sum(stored.values()) == EVENTS
