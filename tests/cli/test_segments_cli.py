"""`patron segments ...` and `patron rfm` as real processes."""

from __future__ import annotations

import csv
import io
import json
import random
from pathlib import Path

import pytest

from patron.config import Settings
from patron.workspace import Workspace
from tests.cli.test_keys_events import assert_one_line_error, patron
from tests.identity.test_graph import send
from tests.segments.conftest import identify, shop_messages, track

#: The shop's "today" (tests/segments/conftest.py), for every command.
AS_OF = {"PATRON_SEGMENTS_AS_OF": "2024-06-30T12:00:00Z"}


@pytest.fixture
def shop_store(tmp_path: Path) -> str:
    path = tmp_path / "shop.duckdb"
    with Workspace(Settings(store=path)) as ws:
        send(ws, *shop_messages())
        ws.profiles.build()
    return str(path)


def run(*args: str) -> str:
    result = patron(*args, env=AS_OF)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_create_list_show_members_and_delete(shop_store: str) -> None:
    made = json.loads(run("segments", "create", "us", "--where", "country = 'US'", "--description", "US", "--json",
                          "--store", shop_store))  # fmt: skip
    assert made["size"] == 3 and made["kind"] == "dynamic"
    human = run("segments", "create", "recent", "--where", "performed('Order Completed', within 30d)", "--store", shop_store)
    assert "created dynamic segment recent: 5 profiles (62.5% of 8)" in human
    listed = json.loads(run("segments", "list", "--json", "--store", shop_store))
    assert [(s["name"], s["size"]) for s in listed] == [("recent", 5), ("us", 3)]
    assert "country = 'US'" in run("segments", "list", "--store", shop_store)
    shown = json.loads(run("segments", "show", "us", "--json", "--store", shop_store))
    assert shown["entries"] == 3 and shown["exits"] == 0 and shown["share"] == 3 / 8
    assert "3 of 8 (37.5%)" in run("segments", "show", "us", "--store", shop_store)
    rows = list(csv.DictReader(io.StringIO(run("segments", "members", "us", "--format", "csv", "--store", shop_store))))
    assert sorted(r["email"] for r in rows) == ["u1@shop.com", "u4@example.com", "u8@shop.com"]
    assert all(r["profile_id"].startswith("prof_") and r["entered_at"] for r in rows)
    as_json = json.loads(run("segments", "members", "us", "--format", "json", "--limit", "2", "--store", shop_store))
    assert len(as_json) == 2
    assert json.loads(run("segments", "members", "us", "--at", "2020-01-01", "--format", "json", "--store", shop_store)) == []
    overlap = json.loads(run("segments", "overlap", "us", "recent", "--json", "--store", shop_store))
    assert overlap["both"] == 2  # u1 and u8
    deleted = json.loads(run("segments", "delete", "us", "--json", "--store", shop_store))
    assert deleted == {"deleted": "us", "members": 3}
    assert_one_line_error(patron("segments", "show", "us", "--store", shop_store), "no segment named 'us'")


def test_preview_refresh_and_attributes(shop_store: str) -> None:
    preview = json.loads(run("segments", "preview", "--where", "age > 30 AND country = 'US'", "--json", "--store", shop_store))
    assert preview["count"] == 2 and {r["email"] for r in preview["sample"]} == {"u1@shop.com", "u8@shop.com"}
    human = run("segments", "preview", "--where", "country = 'JP'", "--store", shop_store)
    assert "0 of 8 profiles" in human and "matches no one" in human
    run("segments", "create", "germans", "--where", "country = 'DE'", "--store", shop_store)
    with Workspace(Settings(store=Path(shop_store))) as ws:
        send(ws, identify("u9", {"email": "u9@shop.com", "country": "DE"}, day="2024-06-29"))
    report = json.loads(run("segments", "refresh", "--json", "--store", shop_store))
    assert report["segments"]["germans"]["entered"] == 1 and report["segments"]["germans"]["size"] == 3
    assert "full refresh" in run("segments", "refresh", "--full", "--store", shop_store)
    attributes = {a["name"]: a for a in json.loads(run("segments", "attributes", "--json", "--store", shop_store))}
    assert attributes["age"]["kind"] == "number" and attributes["age"]["source"] == "trait"
    assert attributes["last_order_at"]["kind"] == "timestamp" and attributes["rfm_group"]["source"] == "rfm"
    assert attributes["tags"]["kind"] == "list" and attributes["birthday"]["kind"] == "date"


def test_static_segments_from_a_query_and_a_file(shop_store: str, tmp_path: Path) -> None:
    run("segments", "create", "frozen", "--where", "country = 'US'", "--static", "--store", shop_store)
    ids = tmp_path / "ids.csv"
    ids.write_text("email\nu2@shop.com\nghost@nowhere.com\n")
    human = run("segments", "create", "crm", "--ids", str(ids), "--store", shop_store)
    assert "created static segment crm: 1 profiles" in human and "ghost@nowhere.com" in human
    assert [s["kind"] for s in json.loads(run("segments", "list", "--json", "--store", shop_store))] == ["static", "static"]


def test_rfm_command(shop_store: str) -> None:
    summary = json.loads(run("rfm", "--json", "--store", shop_store))
    assert summary["purchasers"] == 7 and summary["prospects"] == 1
    assert sum(g["customers"] for g in summary["groups"]) == 7
    assert sum(g["revenue_share"] for g in summary["groups"]) == pytest.approx(1.0)
    human = run("rfm", "--store", shop_store)
    assert "Loyal Customers" in human and "thresholds" in human


def test_cluster_saves_static_segments(tmp_path: Path) -> None:
    path = tmp_path / "many.duckdb"
    rng = random.Random(3)
    messages = []
    # Three kinds of buyer: frequent and recent, one-off and lapsed, big spenders.
    for n in range(60):
        group = n % 3
        user = f"c{n}"
        messages.append(identify(user, {"email": f"{user}@shop.com"}))
        orders = (8, 1, 3)[group]
        for k in range(orders):
            day = (f"2024-06-{rng.randint(1, 28):02d}", f"2023-0{rng.randint(1, 6)}-10", f"2024-0{rng.randint(3, 6)}-05")[group]
            revenue = (20.0, 15.0, 900.0)[group] * rng.uniform(0.9, 1.1)
            messages.append(track(user, "Order Completed", day, f"o-{user}-{k}", revenue=revenue))
    with Workspace(Settings(store=path)) as ws:
        send(ws, *messages)
        ws.profiles.build()
    result = json.loads(run("segments", "cluster", "--features", "recency_days,frequency,monetary", "--seed", "1", "--json",
                            "--store", str(path)))  # fmt: skip
    assert result["k"] == 3 and sorted(result["curve"]) == ["2", "3", "4", "5", "6", "7", "8"]
    assert [s["size"] for s in result["segments"]] == [20, 20, 20]
    assert [s["segment"] for s in result["segments"]] == ["cluster-1", "cluster-2", "cluster-3"]
    names = " | ".join(s["name"] for s in result["segments"])
    assert "high spend" in names and "lapsed" in names
    listed = json.loads(run("segments", "list", "--json", "--store", str(path)))
    assert [(s["name"], s["kind"], s["size"]) for s in listed] == [(f"cluster-{i}", "static", 20) for i in (1, 2, 3)]
    # Run again: the earlier clusters are replaced, not duplicated.
    again = json.loads(run("segments", "cluster", "--features", "recency_days,frequency,monetary", "--seed", "1", "--json",
                           "--store", str(path)))  # fmt: skip
    assert again["names"] == result["names"]
    assert len(json.loads(run("segments", "list", "--json", "--store", str(path)))) == 3
    assert_one_line_error(patron("segments", "cluster", "--features", "country", "--store", str(path), env=AS_OF),
                          "is not a numeric attribute")  # fmt: skip
    assert_one_line_error(patron("segments", "cluster", "--features", "frequency", "--k", "12", "--store", str(path), env=AS_OF),
                          "--k")  # fmt: skip


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("segments", "preview", "--where", "age > 'abc'"), "column 7: age is a number; 'abc' is text"),
        (("segments", "preview", "--where", "country = "), "column 10: the query ends after '='"),
        (("segments", "create", "x", "--where", "in_segment('x')"), "may not refer to themselves"),
        (("segments", "members", "nope"), "no segment named 'nope'"),
        (("segments", "members", "nope", "--at", "yesterday"), "--at: 'yesterday' is not a date"),
        (("segments", "create", "x"), "give --where QUERY or --ids FILE.csv"),
    ],
)
def test_mistakes_are_one_line_errors(shop_store: str, args: tuple[str, ...], fragment: str) -> None:
    assert_one_line_error(patron(*args, "--store", shop_store, env=AS_OF), fragment)
