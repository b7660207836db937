"""The identity graph on a real store: links, merge rules, explanations, stable ids."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from patron.collect.spec import rows_to_table
from patron.collect.timestamps import utc_now
from patron.config import Settings
from patron.identity.exceptions import IdentityError, NotResolved, UnknownProfile
from patron.identity.graph import profile_id_for
from patron.identity.identifiers import Identifier
from patron.workspace import Workspace


def send(ws: Workspace, *messages: dict[str, Any], source: str = "web") -> None:
    prepared = ws.collector.batch({"batch": list(messages)}, source_id=source, received_at=utc_now())
    assert not prepared.rejections, prepared.rejections
    ws.store.append(rows_to_table(prepared.rows))


def profiles(ws: Workspace) -> dict[str, set[str]]:
    """profile id -> {"type:value", ...}"""
    out: dict[str, set[str]] = {}
    for row in ws.identity.clusters():
        out.setdefault(row["profile_id"], set()).add(f"{row['identifier_type']}:{row['identifier_value']}")
    return out


def members(ws: Workspace) -> list[set[str]]:
    return sorted(profiles(ws).values(), key=sorted)


def test_identifiers_in_one_message_and_aliases_join_profiles(workspace: Workspace) -> None:
    send(
        workspace,
        {"type": "page", "anonymousId": "anon-1", "timestamp": "2024-01-01T10:00:00Z"},
        {"type": "identify", "anonymousId": "anon-1", "userId": "u1", "traits": {"email": " Ann@Shop.com "}, "timestamp": "2024-01-01T10:05:00Z"},
        {"type": "track", "anonymousId": "anon-2", "event": "Viewed", "context": {"traits": {"email": "ann@shop.com"}}, "timestamp": "2024-01-02T09:00:00Z"},
        {"type": "alias", "previousId": "anon-3", "userId": "u1", "timestamp": "2024-01-03T09:00:00Z"},
        {"type": "identify", "userId": "u2", "traits": {"phone": "(415) 555-2671"}, "timestamp": "2024-01-04T09:00:00Z"},
    )
    report = workspace.identity.resolve()
    assert report.profiles == 2 and report.edges_refused == 0
    assert members(workspace) == [
        {"anonymous_id:anon-1", "anonymous_id:anon-2", "anonymous_id:anon-3", "email:ann@shop.com", "user_id:u1"},
        {"phone:+14155552671", "user_id:u2"},
    ]
    # The profile is named after its first-seen identifier.
    assert workspace.identity.profile_id("anon-1") == profile_id_for(Identifier("anonymous_id", "anon-1"))


def test_two_user_ids_are_never_merged_and_the_refusal_is_explained(workspace: Workspace) -> None:
    send(
        workspace,
        {"type": "identify", "userId": "u1", "traits": {"email": "shared@family.com"}, "messageId": "m1", "timestamp": "2024-01-01T00:00:00Z"},
        {"type": "identify", "userId": "u2", "traits": {"email": "shared@family.com"}, "messageId": "m2", "timestamp": "2024-01-02T00:00:00Z"},
        # A shared device: one anonymous id seen with both users.
        {"type": "identify", "anonymousId": "tablet", "userId": "u2", "messageId": "m3", "timestamp": "2024-01-03T00:00:00Z"},
        {"type": "identify", "anonymousId": "tablet", "userId": "u1", "messageId": "m4", "timestamp": "2024-01-04T00:00:00Z"},
    )
    report = workspace.identity.resolve()
    assert report.profiles == 2 and report.edges_refused == 2
    groups = members(workspace)
    assert {"user_id:u1", "email:shared@family.com"} in groups  # the older link wins
    assert {"user_id:u2", "anonymous_id:tablet"} in groups
    explanation = workspace.identity.explain("u2")
    refused = {(e["message_id"], e["reason"]) for e in explanation.refused}
    assert ("m2", "a profile may hold at most 1 user_id (would hold 2)") in refused
    assert ("m4", "a profile may hold at most 1 user_id (would hold 2)") in refused
    [link] = explanation.links
    assert (link["message_id"], link["kind"], link["source_id"]) == ("m3", "identify", "web")


def test_limits_come_from_settings(store_path: Path) -> None:
    with Workspace(Settings(store=store_path, identity_limits={"user_id": 2, "email": 1})) as ws:
        send(
            ws,
            {"type": "identify", "userId": "u1", "traits": {"email": "a@x.com"}, "timestamp": "2024-01-01T00:00:00Z"},
            {"type": "identify", "userId": "u2", "traits": {"email": "a@x.com"}, "timestamp": "2024-01-02T00:00:00Z"},
            {"type": "identify", "userId": "u2", "traits": {"email": "b@x.com"}, "timestamp": "2024-01-03T00:00:00Z"},
        )
        ws.identity.resolve()
        assert members(ws) == [{"email:a@x.com", "user_id:u1", "user_id:u2"}, {"email:b@x.com"}]


def test_placeholders_are_not_identifiers(workspace: Workspace) -> None:
    send(
        workspace,
        {"type": "identify", "userId": "u1", "traits": {"email": "null"}},
        {"type": "identify", "userId": "u2", "traits": {"email": "null"}},
        {"type": "track", "userId": "undefined", "event": "E", "anonymousId": "a1"},
    )
    report = workspace.identity.resolve()
    assert report.profiles == 3 and report.values_refused == 2
    assert members(workspace) == [{"anonymous_id:a1"}, {"user_id:u1"}, {"user_id:u2"}]


def test_merges_keep_the_older_profile_id_and_old_ids_redirect(workspace: Workspace) -> None:
    send(workspace, {"type": "identify", "userId": "u1", "timestamp": "2024-01-01T00:00:00Z"})
    send(workspace, {"type": "page", "anonymousId": "a9", "timestamp": "2024-02-01T00:00:00Z"})
    workspace.identity.resolve()
    old_u1, old_a9 = workspace.identity.profile_id("u1"), workspace.identity.profile_id("a9")
    assert old_u1 != old_a9
    send(workspace, {"type": "identify", "userId": "u1", "anonymousId": "a9", "timestamp": "2024-03-01T00:00:00Z"})
    report = workspace.identity.resolve()
    assert report.profiles == 1 and report.redirected == 1
    assert workspace.identity.profile_id("u1") == old_u1  # the older profile survives
    assert workspace.identity.profile_id(old_a9) == old_u1  # the retired id resolves
    # Rebuilding again changes nothing and keeps the redirect.
    again = workspace.identity.resolve()
    assert again.redirected == 1 and workspace.identity.profile_id(old_a9) == old_u1


def test_lookups_by_typed_identifier(workspace: Workspace) -> None:
    send(workspace, {"type": "identify", "userId": "u1", "traits": {"email": "ann@shop.com"}, "context": {"externalIds": [{"id": "7", "type": "crm_id"}]}})
    workspace.identity.resolve()
    profile = workspace.identity.profile_id("user_id:u1")
    assert workspace.identity.profile_id("email:ANN@shop.com") == profile
    assert workspace.identity.profile_id("external:crm_id:7") == profile
    with pytest.raises(UnknownProfile, match="patron identity clusters"):
        workspace.identity.profile_id("email:nobody@shop.com")


def test_reading_before_resolving_says_what_to_run(workspace: Workspace) -> None:
    with pytest.raises(NotResolved, match="patron identity resolve"):
        workspace.identity.clusters()


def test_split_by_edge_is_remembered_across_replays_and_new_messages(workspace: Workspace) -> None:
    send(
        workspace,
        {"type": "identify", "userId": "u1", "traits": {"email": "ann@shop.com"}, "timestamp": "2024-01-01T00:00:00Z"},
        {"type": "identify", "anonymousId": "kiosk", "traits": {"email": "ann@shop.com"}, "messageId": "bad", "timestamp": "2024-01-02T00:00:00Z"},
    )
    workspace.identity.resolve()
    profile = workspace.identity.profile_id("u1")
    [bad_link] = [e for e in workspace.identity.explain(profile).links if e["message_id"] == "bad"]
    report = workspace.identity.split(profile, edge_id=bad_link["edge_id"], reason="shared kiosk")
    assert report.pairs_removed == 1
    assert sorted(report.profiles.values()) == [["anonymous_id:kiosk"], ["email:ann@shop.com", "user_id:u1"]]
    assert workspace.identity.profile_id("u1") == profile  # the part with the anchor keeps the id
    # A new message linking the same pair does not join them again; the link shows as removed.
    send(workspace, {"type": "track", "anonymousId": "kiosk", "event": "E", "context": {"traits": {"email": "ann@shop.com"}}})
    workspace.identity.resolve()
    assert workspace.identity.profile_id("kiosk") != profile
    edges = workspace.store.to_pyarrow(workspace.store.table("identity_edges")).to_pylist()
    assert {e["message_id"] for e in edges if e["status"] == "removed"} >= {"bad"}
    assert all("shared kiosk" in e["reason"] for e in edges if e["status"] == "removed")


def test_split_by_identifier_detaches_it_from_every_other(workspace: Workspace) -> None:
    send(
        workspace,
        {"type": "identify", "userId": "u1", "anonymousId": "a1", "traits": {"email": "ann@shop.com", "phone": "415 555 2671"}},
        {"type": "track", "anonymousId": "a1", "event": "E", "context": {"traits": {"phone": "415-555-2671"}}},
    )
    workspace.identity.resolve()
    report = workspace.identity.split("u1", identifier="phone:+14155552671")
    assert report.pairs_removed == 3
    groups = sorted(report.profiles.values())
    assert groups == [["anonymous_id:a1", "email:ann@shop.com", "user_id:u1"], ["phone:+14155552671"]]
    with pytest.raises(IdentityError, match="only identifier"):
        workspace.identity.split("phone:+14155552671", identifier="phone:+14155552671")
    with pytest.raises(IdentityError, match="exactly one"):
        workspace.identity.split("u1")
    with pytest.raises(IdentityError, match="no link"):
        workspace.identity.split("u1", edge_id="e_nope")


def test_preview_of_other_limits_writes_nothing(workspace: Workspace) -> None:
    from patron.identity.graph import MergeRules

    send(
        workspace,
        {"type": "identify", "userId": "u1", "traits": {"email": "a@x.com"}, "timestamp": "2024-01-01T00:00:00Z"},
        {"type": "identify", "userId": "u1", "traits": {"email": "b@x.com"}, "timestamp": "2024-01-02T00:00:00Z"},
        {"type": "identify", "userId": "u2", "traits": {"email": "b@x.com"}, "timestamp": "2024-01-03T00:00:00Z"},
    )
    workspace.identity.resolve()
    before = workspace.identity.clusters()
    looser = workspace.identity.preview(MergeRules(limits={"user_id": 2}))
    assert (looser.profiles_now, looser.profiles_after, looser.profiles_merged, looser.profiles_split) == (2, 1, 1, 0)
    # One email per profile: b@x.com goes to u2 (u1 already has a@x.com): u1's profile
    # splits, and its b@x.com joins u2's.
    stricter = workspace.identity.preview(MergeRules(limits={"user_id": 1, "email": 1}))
    assert (stricter.profiles_after, stricter.profiles_split, stricter.profiles_merged) == (2, 1, 1)
    assert workspace.identity.clusters() == before
