"""Counting, tailing, listing failed messages and replaying them after a fix."""

from __future__ import annotations

from pathlib import Path

from patron.collect.timestamps import utc_now
from patron.config import Settings
from patron.workspace import Workspace


def collect_batch(ws: Workspace, batch: list[object], source: str = "web") -> tuple[int, int]:
    prepared = ws.collector.batch({"batch": batch}, source_id=source, received_at=utc_now())
    from patron.collect.spec import rows_to_table

    result = ws.store.append(rows_to_table(prepared.rows), prepared.failed_table())
    return len(result.inserted), result.failed_stored


def test_counts_and_tail(workspace: Workspace) -> None:
    stored, failed = collect_batch(
        workspace,
        [
            {"type": "identify", "userId": "u1"},
            {"type": "track", "userId": "u1", "event": "A", "timestamp": "2020-01-01T00:00:00Z"},
            {"type": "track", "userId": "u1", "event": "B"},
            {"type": "track"},
        ],
    )
    collect_batch(workspace, [{"type": "page", "anonymousId": "x"}], source="app")
    assert (stored, failed) == (3, 1)
    counts = workspace.events.counts()
    assert counts.total == 4
    assert counts.by_type == {"identify": 1, "page": 1, "track": 2}
    assert counts.by_source == {"app": 1, "web": 3}
    assert counts.failed == 1
    assert counts.first_timestamp == "2020-01-01T00:00:00"
    tail = workspace.events.tail(2)
    assert [row["type"] for row in tail] == ["track", "page"]
    assert tail[0]["seq"] < tail[1]["seq"]


def test_duplicates_are_stored_once_across_appends(workspace: Workspace) -> None:
    message = {"type": "track", "userId": "u", "event": "E", "messageId": "same"}
    assert collect_batch(workspace, [dict(message)]) == (1, 0)
    assert collect_batch(workspace, [dict(message)]) == (0, 0)
    # The same messageId from another source is another message.
    assert collect_batch(workspace, [dict(message)], source="other") == (1, 0)
    assert workspace.events.counts().total == 2


def test_replay_after_a_settings_fix(store_path: Path) -> None:
    future = {"type": "track", "userId": "u", "event": "E", "timestamp": "2999-01-01T00:00:00Z", "messageId": "f1"}
    hopeless = {"type": "track", "userId": "u"}
    with Workspace(Settings(store=store_path)) as ws:
        assert collect_batch(ws, [future, hopeless]) == (0, 2)
        report = ws.events.replay_failed()
        assert (report.replayed, report.still_failing) == (0, 2)
    # An operator decides far-future timestamps are acceptable for this source, then replays.
    with Workspace(Settings(store=store_path, max_future_seconds=10**12)) as ws:
        report = ws.events.replay_failed()
        assert (report.replayed, report.duplicates, report.still_failing) == (1, 0, 1)
        assert ws.events.counts().total == 1
        remaining = ws.events.failed()
        assert [row["field"] for row in remaining] == ["event"]
        assert len(ws.events.failed(include_replayed=True)) == 2
        # Replaying again does nothing more.
        again = ws.events.replay_failed()
        assert (again.replayed, again.still_failing) == (0, 1)


def test_replay_selected_ids_only(workspace: Workspace) -> None:
    collect_batch(workspace, [{"type": "track", "userId": "u"}, {"type": "alias", "userId": "u"}])
    first = workspace.events.failed()[0]["failed_id"]
    report = workspace.events.replay_failed([first])
    assert report.still_failing == 1
