"""`patron profiles build | show` as real processes."""

from __future__ import annotations

import json
from pathlib import Path

from patron.config import Settings
from patron.workspace import Workspace
from tests.cli.test_keys_events import assert_one_line_error, patron
from tests.identity.test_graph import send


def test_build_and_show(store_path: Path) -> None:
    store = str(store_path)
    with Workspace(Settings(store=store_path)) as ws:
        send(ws, {"type": "identify", "userId": "u1", "traits": {"email": "ann@shop.com", "plan": "pro"}})
    assert_one_line_error(patron("profiles", "show", "u1", "--store", store), "patron profiles build")
    report = json.loads(patron("profiles", "build", "--json", "--store", store).stdout)
    assert report["profiles"] == 1 and report["traits"] == 2
    view = json.loads(patron("profiles", "show", "email:ann@shop.com", "--json", "--store", store).stdout)
    assert view["traits"]["plan"]["value"] == "pro" and view["timeline"]["total"] == 1
    human = patron("profiles", "show", "u1", "--store", store)
    assert human.returncode == 0 and "computed traits" in human.stdout and "plan" in human.stdout
    assert_one_line_error(patron("profiles", "show", "nobody", "--store", store), "no profile or identifier")


def test_export_to_a_file(store_path: Path, tmp_path: Path) -> None:
    store = str(store_path)
    with Workspace(Settings(store=store_path)) as ws:
        send(ws, {"type": "identify", "userId": "u1", "traits": {"email": "ann@shop.com"}})
        ws.profiles.build()
    out = tmp_path / "ann.json"
    result = patron("profiles", "export", "ann@shop.com", "--output", str(out), "--store", store)
    assert result.returncode == 0, result.stderr
    document = json.loads(out.read_text())
    assert document["events"][0]["raw"]["traits"]["email"] == "ann@shop.com"
    assert not (tmp_path / "ann.json.tmp").exists()


def test_quality_report_command(store_path: Path) -> None:
    store = str(store_path)
    with Workspace(Settings(store=store_path)) as ws:
        send(ws, {"type": "identify", "userId": "u1", "traits": {"email": "bad"}})
        ws.profiles.build()
    report = json.loads(patron("quality", "report", "--json", "--store", store).stdout)
    assert report["unusable"]["share"] == 1.0 and report["problems"]["invalid_email"]["profiles"] == 1
    human = patron("quality", "report", "--store", store)
    assert human.returncode == 0 and "100.0% of 1 profiles are unusable" in human.stdout
