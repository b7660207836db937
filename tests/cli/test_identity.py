"""`patron identity resolve | clusters | explain` as real processes."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from patron.collect.spec import rows_to_table
from patron.collect.timestamps import utc_now
from patron.config import Settings
from patron.workspace import Workspace
from tests.cli.test_keys_events import assert_one_line_error, patron


def test_resolve_clusters_and_explain(store_path: Path) -> None:
    store = str(store_path)
    with Workspace(Settings(store=store_path)) as ws:
        prepared = ws.collector.batch(
            {
                "batch": [
                    {"type": "identify", "userId": "u1", "anonymousId": "a1", "traits": {"email": "ann@shop.com"}, "messageId": "m1"},
                    {"type": "identify", "userId": "u2", "traits": {"email": "ann@shop.com"}, "messageId": "m2"},
                ]
            },
            source_id="web",
            received_at=utc_now(),
        )
        ws.store.append(rows_to_table(prepared.rows))
    assert_one_line_error(patron("identity", "clusters", "--store", store), "patron identity resolve")
    report = json.loads(patron("identity", "resolve", "--json", "--store", store).stdout)
    assert (report["profiles"], report["identifiers"], report["edges_refused"]) == (2, 4, 1)
    rows = list(csv.DictReader(io.StringIO(patron("identity", "clusters", "--store", store).stdout)))
    assert set(rows[0]) == {"identifier_type", "identifier_value", "profile_id"} and len(rows) == 4
    as_json = json.loads(patron("identity", "clusters", "--format", "json", "--store", store).stdout)
    assert {(r["identifier_type"], r["identifier_value"]) for r in as_json} == {
        ("user_id", "u1"), ("anonymous_id", "a1"), ("email", "ann@shop.com"), ("user_id", "u2")
    }
    explained = json.loads(patron("identity", "explain", "email:ann@shop.com", "--json", "--store", store).stdout)
    assert {i["identifier_value"] for i in explained["identifiers"]} == {"u1", "a1", "ann@shop.com"}
    assert {link["message_id"] for link in explained["links"]} == {"m1"}
    assert [r["message_id"] for r in explained["refused"]] == ["m2"]
    human = patron("identity", "explain", "u1", "--store", store)
    assert human.returncode == 0 and "links that joined them" in human.stdout
    assert_one_line_error(patron("identity", "explain", "nobody", "--store", store), "no profile or identifier")
    bad = patron("identity", "clusters", "--format", "xml", "--store", store)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_split_and_dry_run_from_the_command_line(store_path: Path) -> None:
    store = str(store_path)
    with Workspace(Settings(store=store_path)) as ws:
        prepared = ws.collector.batch(
            {"batch": [{"type": "identify", "userId": "u1", "anonymousId": "a1", "traits": {"email": "ann@shop.com"}}]},
            source_id="web",
            received_at=utc_now(),
        )
        ws.store.append(rows_to_table(prepared.rows))
    assert patron("identity", "resolve", "--store", store).returncode == 0
    preview = json.loads(patron("identity", "resolve", "--dry-run", "--limits", '{"email": 1}', "--json", "--store", store).stdout)
    assert preview["profiles_now"] == 1 and preview["profiles_after"] == 1
    bad = patron("identity", "resolve", "--dry-run", "--limits", "{oops", "--store", store)
    assert bad.returncode == 2 and "not JSON" in bad.stderr
    split = json.loads(patron("identity", "split", "u1", "--identifier", "anonymous_id:a1", "--json", "--store", store).stdout)
    assert sorted(split["profiles"].values()) == [["anonymous_id:a1"], ["email:ann@shop.com", "user_id:u1"]]
    assert_one_line_error(patron("identity", "split", "u1", "--store", store), "exactly one")


def test_match_and_review_from_the_command_line(tmp_path: Path) -> None:
    import csv as csv_module

    from bench.match_febrl import load_febrl3

    records, _ = load_febrl3()
    crm = tmp_path / "crm.csv"
    with crm.open("w", newline="") as f:
        writer = csv_module.writer(f)
        writer.writerow(["rec_id", "firstName", "lastName", "birthday", "address.city", "address.postalCode", "ssn"])
        for r in records.to_pylist():
            writer.writerow([r["record_id"], r["firstName"] or "", r["lastName"] or "", r["birthday"] or "", r["address_city"] or "", r["address_postalCode"] or "", r["soc_sec_id"] or ""])
    store = str(tmp_path / "crm.duckdb")
    assert patron("import", "customers", str(crm), "--id-column", "rec_id", "--store", store).returncode == 0
    report = json.loads(patron("identity", "match", "--on", "ssn", "--json", "--store", store).stdout)
    assert report["profiles_before"] == 5000 and 1900 <= report["profiles_after"] <= 2100
    assert "ssn" in report["traits_compared"]
    pending = json.loads(patron("identity", "review", "--json", "--store", store).stdout)
    assert all(p["status"] == "review" for p in pending)
    if pending:
        decided = patron("identity", "review", "--reject", pending[0]["pair_id"], "--store", store)
        assert decided.returncode == 0 and "decided 1 pair" in decided.stdout
    assert_one_line_error(patron("identity", "review", "--accept", "pair_nope", "--store", store), "no probable link")
