"""The data-quality report on profiles with known problems."""

from __future__ import annotations

import pytest

from patron.collect.spec import rows_to_table
from patron.collect.timestamps import utc_now
from patron.profiles.exceptions import ProfilesNotBuilt
from patron.workspace import Workspace
from tests.identity.test_graph import send


def test_report_counts_each_problem_with_examples(workspace: Workspace) -> None:
    with pytest.raises(ProfilesNotBuilt):
        workspace.profiles.quality(workspace.identifier_rules)
    send(
        workspace,
        {"type": "identify", "userId": "good", "traits": {"email": "ok@shop.com", "phone": "415 555 2671", "age": 40, "birthday": "1984-02-01"}, "timestamp": "2024-06-01T00:00:00Z"},
        {"type": "identify", "userId": "no-contact", "traits": {"age": 150}, "timestamp": "2024-06-01T00:00:00Z"},
        {"type": "identify", "userId": "bad-email", "traits": {"email": "not-an-email", "birthday": "31/02/1990"}, "timestamp": "2024-06-01T00:00:00Z"},
        {"type": "identify", "userId": "old", "traits": {"email": "old@shop.com", "age": "41"}, "timestamp": "2020-01-01T00:00:00Z"},
    )
    prepared = workspace.collector.batch({"batch": [{"type": "track", "userId": "x"}]}, source_id="web", received_at=utc_now())
    workspace.store.append(rows_to_table([]), prepared.failed_table())
    workspace.profiles.build()
    report = workspace.profiles.quality(workspace.identifier_rules, stale_days=365)
    problems = report["problems"]
    ids = {p: {e["profile_id"] for e in problems[p]["examples"]} for p in problems}
    pid = workspace.identity.profile_id
    assert report["profiles"] == 4
    assert problems["missing_email"]["profiles"] == 1 and ids["missing_email"] == {pid("no-contact")}
    assert problems["invalid_email"]["examples"] == [{"profile_id": pid("bad-email"), "value": "not-an-email"}]
    assert problems["missing_phone"]["profiles"] == 3
    assert ids["malformed_dates"] == {pid("bad-email")}
    assert problems["impossible_ages"]["examples"] == [{"profile_id": pid("no-contact"), "value": 150}]
    assert ids["stale"] == {pid("old")}
    assert ids["uncontactable"] == {pid("no-contact"), pid("bad-email")}
    assert report["unusable"]["profiles"] == 2 and report["unusable"]["share"] == 0.5
    assert report["rejected_messages"]["messages"] == 1
    assert report["rejected_messages"]["top_reasons"][0]["reason"] == "is required for a track call"
