"""Consent per purpose, from context.consent and Consent Updated events, with history."""

from __future__ import annotations

from datetime import datetime

from patron.workspace import Workspace
from tests.identity.test_graph import send


def consent(prefs: dict[str, bool]) -> dict:
    return {"consent": {"categoryPreferences": prefs}}


def test_consent_state_and_history(workspace: Workspace) -> None:
    send(
        workspace,
        {"type": "identify", "userId": "u1", "messageId": "m1", "timestamp": "2024-01-01T00:00:00Z",
         "context": consent({"marketing": True, "analytics": True})},
        # The same state again is not a change.
        {"type": "page", "userId": "u1", "messageId": "m2", "timestamp": "2024-01-02T00:00:00Z",
         "context": consent({"marketing": True, "analytics": True})},
        {"type": "track", "userId": "u1", "event": "Consent Updated", "messageId": "m3", "timestamp": "2024-02-01T00:00:00Z",
         "properties": {"categoryPreferences": {"marketing": False}}},
        {"type": "track", "userId": "u1", "event": "Segment Consent Preference Updated", "messageId": "m4",
         "timestamp": "2024-03-01T00:00:00Z", "context": consent({"marketing": True, "analytics": False, "ads": "yes"})},
        {"type": "identify", "userId": "u2", "messageId": "m5"},
    )
    workspace.profiles.build()
    view = workspace.profiles.show("u1")["consent"]
    assert view["current"] == {"analytics": False, "marketing": True}
    history = [(h["category"], h["granted"], h["message_id"], h["changed_at"]) for h in view["history"]]
    assert history == [
        ("analytics", True, "m1", datetime(2024, 1, 1)),
        ("analytics", False, "m4", datetime(2024, 3, 1)),
        ("marketing", True, "m1", datetime(2024, 1, 1)),
        ("marketing", False, "m3", datetime(2024, 2, 1)),
        ("marketing", True, "m4", datetime(2024, 3, 1)),
    ]
    assert workspace.profiles.show("u2")["consent"] == {"current": {}, "history": []}
