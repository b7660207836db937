"""The probabilistic pass end to end: FEBRL3 imported as CRM records, resolved into profiles.

The issue's bar: pairwise precision and recall of the resolved profiles both >= 0.99.
"""

from __future__ import annotations

import csv
from collections import defaultdict

import pytest

from bench.match_febrl import load_febrl3, pairs_within, score
from patron.config import Settings
from patron.identity.matching import MatchSettings
from patron.workspace import Workspace


@pytest.fixture(scope="module")
def resolved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, set[tuple[str, str]], object]:
    records, truth = load_febrl3()
    folder = tmp_path_factory.mktemp("febrl-pass")
    crm = folder / "febrl3.csv"
    columns = {
        "rec_id": "record_id", "firstName": "firstName", "lastName": "lastName", "birthday": "birthday",
        "address.street": "address_street", "address.city": "address_city",
        "address.postalCode": "address_postalCode", "address.state": "address_state", "ssn": "soc_sec_id",
    }
    with crm.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for row in records.to_pylist():
            writer.writerow([row[source] or "" for source in columns.values()])
    ws = Workspace(Settings(store=folder / "febrl.duckdb"))
    report = ws.imports.customers(crm, id_column="rec_id", source_id="febrl")
    assert report.stored == 5000
    match = ws.profiles.match(["ssn"], MatchSettings())
    return ws, truth, match


def test_febrl3_profiles_reach_099(resolved: tuple[Workspace, set[tuple[str, str]], object]) -> None:
    ws, truth, match = resolved
    groups: dict[str, list[str]] = defaultdict(list)
    for row in ws.identity.clusters():
        if row["identifier_type"] == "external:febrl_id":
            groups[row["profile_id"]].append(row["identifier_value"])
    assert sum(len(g) for g in groups.values()) == 5000
    scores = score(pairs_within(groups.values()), truth)
    print(f"FEBRL3 through import, graph and probabilistic pass: precision {scores.precision:.4f}, recall {scores.recall:.4f}; {match}")
    assert scores.precision >= 0.99 and scores.recall >= 0.99
    assert match.profiles_before == 5000 and match.profiles_after == len(groups)  # type: ignore[attr-defined]
    # The pairs left for review show up as suspected duplicates in the quality report.
    quality = ws.profiles.quality(ws.identifier_rules)["problems"]["suspected_duplicates"]
    pending = ws.identity.probable_links("review")
    ends = {ws.identity.profile_id(f"{p['a_type']}:{p['a_value']}") for p in pending}
    ends |= {ws.identity.profile_id(f"{p['b_type']}:{p['b_value']}") for p in pending}
    assert pending and 0 < quality["profiles"] <= len(ends)
    assert all(e["value"]["maybe_same_as"] in ends for e in quality["examples"])


def test_probable_links_are_explained_reviewable_and_splittable(resolved: tuple[Workspace, set[tuple[str, str]], object]) -> None:
    ws, _, _ = resolved
    links = ws.identity.probable_links()
    assert links and all(link["status"] in ("match", "review") for link in links)
    matched = next(link for link in links if link["status"] == "match")
    profile = ws.identity.profile_id(f"external:{matched['a_type'].split(':', 1)[1]}:{matched['a_value']}")
    explanation = ws.identity.explain(profile)
    probabilistic = [e for e in explanation.links if e["kind"] == "probabilistic"]
    assert probabilistic and all(e["weight"] is not None and e["source_id"] == "matcher" for e in probabilistic)
    pending = ws.identity.probable_links("review")
    if pending:
        assert ws.identity.decide([pending[0]["pair_id"]], accept=False) == 1
        assert ws.identity.probable_links("rejected")[0]["pair_id"] == pending[0]["pair_id"]
