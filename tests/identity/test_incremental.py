"""Incremental resolves and profile builds give exactly what a full rebuild gives.

Random message streams over small pools of identifiers (so links, merges across
batches, refused links at the limits, late events with old timestamps and consent
changes all happen) are stored in batches; one store resolves and builds after every
batch, incrementally; another stores the same messages and rebuilds once, in full. Every
derived table must be the same.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from patron.collect.spec import rows_to_table
from patron.collect.timestamps import utc_now
from patron.config import Settings
from patron.workspace import Workspace

START = datetime(2024, 1, 1, tzinfo=UTC)


def random_messages(seed: int, count: int, *, in_order: bool = False) -> list[dict[str, Any]]:
    """Messages at random times over 60 days, or (``in_order``) one hour apart, as
    events mostly arrive, with one in ten sent late (up to a week older)."""
    rng = random.Random(seed)
    users = [f"u{i}" for i in range(6)]
    anons = [f"a{i}" for i in range(14)]
    emails = [f"p{i}@shop.example" for i in range(7)]
    messages = []
    for n in range(count):
        hours = rng.randint(0, 24 * 60)
        if in_order:
            hours = n - (rng.randint(1, 24 * 7) if rng.random() < 0.1 else 0)
        at = (START + timedelta(hours=hours)).isoformat().replace("+00:00", "Z")
        message: dict[str, Any] = {"messageId": f"m{seed}-{n}", "timestamp": at}
        if rng.random() < 0.6:
            message["anonymousId"] = rng.choice(anons)
        if rng.random() < 0.35 or "anonymousId" not in message:
            message["userId"] = rng.choice(users)
        kind = rng.choice(["identify", "track", "track", "page", "alias", "group"])
        if kind == "group":
            company = rng.choice(["Acme", "Initech"])
            message.update(type="group", groupId=company.lower(), traits={"name": company, "industry": "Retail"})
        elif kind == "alias" and "userId" in message:
            message.update(type="alias", previousId=rng.choice(anons + users[:2]))
        elif kind == "identify":
            traits: dict[str, Any] = {"plan": rng.choice(["free", "pro", None])}
            if rng.random() < 0.7:
                traits["email"] = rng.choice(emails)
            message.update(type="identify", traits=traits)
        elif kind == "page":
            context: dict[str, Any] = {"locale": rng.choice(["en-US", "fr-FR"])}
            if rng.random() < 0.4:
                context["campaign"] = {"name": rng.choice(["spring", "summer", "sale"])}
            message.update(type="page", name="Home", context=context)
        else:
            event = rng.choice(["Order Completed", "Product Viewed", "Consent Updated"])
            properties: dict[str, Any] = {"revenue": rng.randint(5, 90), "category": rng.choice(["A", "B", "C"])}
            if rng.random() < 0.2:
                del properties["revenue"]
            if event == "Consent Updated":
                properties = {"categoryPreferences": {"marketing": rng.random() < 0.5}}
            message.update(type="track", event=event, properties=properties)
            if rng.random() < 0.3:
                message["context"] = {"traits": {"email": rng.choice(emails)}}
        messages.append(message)
    return messages


def store(ws: Workspace, messages: list[dict[str, Any]], source_id: str = "web") -> None:
    prepared = ws.collector.batch({"batch": messages}, source_id=source_id, received_at=utc_now())
    assert not prepared.rejections, prepared.rejections
    ws.store.append(rows_to_table(prepared.rows))


def snapshot(ws: Workspace) -> dict[str, list[tuple[Any, ...]]]:
    tables = {
        "identity_identifiers": None,
        "identity_edges": ["edge_id", "status", "reason", "cluster", "a_type", "a_value", "b_type", "b_value"],
        "identity_refused": None,
        "profile_traits": None,
        "profile_computed": None,
        "profile_consent_history": None,
    }
    out = {}
    for name, columns in tables.items():
        table = ws.store.table(name)
        rows = ws.store.to_pyarrow(table.select(*columns) if columns else table).to_pylist()
        out[name] = sorted(tuple(str(v) for v in row.values()) for row in rows)
    return out


@pytest.mark.parametrize(
    ("seed", "in_order", "priority"), [(1, False, []), (2, False, []), (3, True, []), (4, True, []), (5, True, ["crm"])]
)
def test_incremental_resolves_and_builds_equal_a_full_rebuild(
    tmp_path: Path, seed: int, in_order: bool, priority: list[str]
) -> None:
    """In order, most profiles are merged (stored rows and new events); at random times
    most are computed again (a new event older than the profile's latest one). With a
    source priority, batches come alternately from a CRM that outranks the website."""
    messages = random_messages(seed, 240, in_order=in_order)
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(messages)), 7))
    batches = [messages[a:b] for a, b in zip([0, *cuts], [*cuts, len(messages)], strict=True)]
    sources = ["crm" if priority and n % 2 else "web" for n in range(len(batches))]
    settings = {"profile_source_priority": priority}
    with Workspace(Settings(store=tmp_path / "incremental.duckdb", **settings)) as incremental:
        modes, merged, recomputed = [], 0, 0
        for batch, source in zip(batches, sources, strict=True):
            store(incremental, batch, source)
            report = incremental.profiles.build()
            modes.append(report.mode)
            if report.mode == "incremental":
                merged, recomputed = merged + report.merged, recomputed + report.recomputed
        assert modes[0] == "full" and set(modes[1:]) == {"incremental"}
        assert merged and recomputed, (merged, recomputed)
        with Workspace(Settings(store=tmp_path / "full.duckdb", **settings)) as full:
            for batch, source in zip(batches, sources, strict=True):
                store(full, batch, source)
            full.profiles.build(full=True)
            expected = snapshot(full)
        got = snapshot(incremental)
    for name in expected:
        assert got[name] == expected[name], name
    assert expected["identity_edges"] and expected["profile_computed"]
    assert any(row[1] == "refused" for row in expected["identity_edges"]), "the stream should break a limit"


def test_an_incremental_build_computes_only_changed_profiles(tmp_path: Path) -> None:
    with Workspace(Settings(store=tmp_path / "s.duckdb")) as ws:
        store(ws, [{"type": "identify", "userId": f"u{i}", "traits": {"email": f"u{i}@x.example"}} for i in range(20)])
        first = ws.profiles.build()
        assert (first.mode, first.profiles, first.rebuilt) == ("full", 20, 20)
        store(ws, [{"type": "track", "userId": "u3", "event": "Order Completed", "properties": {"revenue": 12}}])
        second = ws.profiles.build()
        assert (second.mode, second.profiles, second.rebuilt) == ("incremental", 20, 1)
        assert ws.profiles.show("user_id:u3")["computed"]["total_revenue"] == 12
        # A new event that joins two profiles: both are computed again, one disappears.
        store(ws, [{"type": "identify", "anonymousId": "dev-1", "traits": {"email": "u4@x.example"}},
                   {"type": "page", "anonymousId": "dev-1", "userId": "u5"}])  # fmt: skip
        third = ws.profiles.build()
        assert third.mode == "incremental" and third.profiles == 20
        nothing = ws.profiles.build()
        assert (nothing.mode, nothing.rebuilt) == ("incremental", 0)
        assert ws.profiles.build(full=True).mode == "full"


def test_a_late_event_with_an_older_time_moves_first_seen_and_the_anchor(tmp_path: Path) -> None:
    with Workspace(Settings(store=tmp_path / "s.duckdb")) as ws:
        store(ws, [{"type": "identify", "userId": "u1", "anonymousId": "a1", "timestamp": "2024-05-01T00:00:00Z"}])
        ws.profiles.build()
        before = ws.identity.profile_id("user_id:u1")
        store(ws, [{"type": "page", "anonymousId": "a1", "timestamp": "2024-01-01T00:00:00Z"}])
        report = ws.identity.resolve()
        assert report.mode == "incremental"
        after = ws.identity.profile_id("user_id:u1")
        # The anchor is the identifier seen first: now the anonymous id; the old id redirects.
        assert after != before and ws.identity.profile_id(before) == after
        first_seen = ws.profiles.build().profiles and ws.profiles.show(after)["computed"]["first_seen"]
        assert first_seen == datetime(2024, 1, 1)


def test_probable_links_found_and_rejected_resolve_incrementally(tmp_path: Path) -> None:
    import pyarrow as pa

    with Workspace(Settings(store=tmp_path / "s.duckdb")) as ws:
        store(ws, random_messages(9, 120))
        store(ws, [{"type": "identify", "userId": "crm-1", "traits": {"email": "ann@crm.example"}},
                   {"type": "identify", "userId": "crm-2", "traits": {"email": "ann.b@crm.example"}},
                   {"type": "identify", "anonymousId": "web-9", "traits": {"email": "ann.b@web.example"}}])  # fmt: skip
        ws.profiles.build()
        one, two = ws.identity.profile_id("email:ann@crm.example"), ws.identity.profile_id("anonymous_id:web-9")
        pairs = pa.Table.from_pylist([{"record_id_l": one, "record_id_r": two, "match_weight": 9.5,
                                       "match_probability": 0.998, "weights": None, "decision": "match"}])  # fmt: skip
        ws.identity.add_probable(pairs)
        linked = ws.profiles.build()
        assert linked.mode == "incremental" and 0 < linked.rebuilt <= 3
        assert ws.identity.profile_id("email:ann@crm.example") == ws.identity.profile_id("anonymous_id:web-9")
        after_link = snapshot(ws)
        ws.profiles.build(full=True)
        assert snapshot(ws) == after_link
        pair = ws.identity.probable_links()[0]["pair_id"]
        ws.identity.decide([pair], accept=False)
        apart = ws.profiles.build()
        assert apart.mode == "incremental"
        assert ws.identity.profile_id("email:ann@crm.example") != ws.identity.profile_id("anonymous_id:web-9")
        after_reject = snapshot(ws)
        ws.profiles.build(full=True)
        assert snapshot(ws) == after_reject


def test_the_build_fingerprints_are_the_same_in_every_process(tmp_path: Path) -> None:
    """A fingerprint that changed from one process to the next would make every build a
    full one (hash-ordered names in the compiled SQL did, once)."""
    import subprocess
    import sys

    with Workspace(Settings(store=tmp_path / "s.duckdb")) as ws:
        store(ws, random_messages(3, 20))
        ws.profiles.build()
    script = (
        "import sys; from pathlib import Path; from patron.config import Settings; from patron.workspace import Workspace\n"
        "ws = Workspace(Settings(store=Path(sys.argv[1])))\n"
        "print(ws.facts.fingerprint, ws.profiles._fingerprint(ws.store.table('event_facts'), ws.store.table('identity_identifiers')))"
    )
    prints = {
        subprocess.run(
            [sys.executable, "-c", script, str(tmp_path / "s.duckdb")], capture_output=True, text=True, check=True,
            env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"},
        ).stdout
        for seed in ("1", "2", "3")
    }  # fmt: skip
    assert len(prints) == 1 and prints.pop().strip()


def test_facts_extract_each_event_once_while_events_keep_arriving(tmp_path: Path) -> None:
    """Events stored between the refresh's look at the log and its write are left for the
    next refresh, not extracted twice."""
    with Workspace(Settings(store=tmp_path / "s.duckdb")) as ws:
        store(ws, random_messages(5, 30))
        ws.facts.refresh()
        store(ws, random_messages(6, 30))
        real_write = ws.store.write

        def write_after_more_arrived(changes: Any, meta: Any = None) -> None:
            store(ws, random_messages(7, 30))  # arrives after the refresh chose its events
            ws.store.write = real_write  # type: ignore[method-assign]
            real_write(changes, meta)

        ws.store.write = write_after_more_arrived  # type: ignore[method-assign]
        assert ws.facts.refresh() == 30
        assert ws.facts.refresh() == 30
        facts = ws.store.table("event_facts")
        assert ws.store.execute(facts.count()) == ws.store.execute(facts.seq.nunique()) == 90
