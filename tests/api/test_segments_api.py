"""Segments over real HTTP: a `patron serve` on the small shop of tests/segments, with
read, write and admin keys, evaluated as of the shop's "today" (PATRON_SEGMENTS_AS_OF)."""

from __future__ import annotations

import csv
import io
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from patron.config import Settings
from patron.workspace import Workspace
from tests.identity.test_graph import send
from tests.segments.conftest import NOW, shop_messages
from tests.servers import PatronServer

US = {"u1@shop.com", "u4@example.com", "u8@shop.com"}


@dataclass
class Shop:
    url: str
    read: str
    write: str
    admin: str

    def call(self, method: str, path: str, key: str | None = "", **kwargs: Any) -> httpx.Response:
        """``key`` "" means the read key for GET and the admin key otherwise; None sends none."""
        if key == "":
            key = self.read if method == "GET" else self.admin
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.request(method, f"{self.url}{path}", headers=headers, timeout=60, **kwargs)

    def get(self, path: str, key: str | None = "", **params: Any) -> httpx.Response:
        return self.call("GET", path, key, params=params)

    def post(self, path: str, body: Any = None, key: str | None = "") -> httpx.Response:
        return self.call("POST", path, key, json=body)

    def created(self, body: dict[str, Any]) -> dict[str, Any]:
        answer = self.post("/v1/segments", body)
        assert answer.status_code == 201, answer.text
        shown: dict[str, Any] = answer.json()
        return shown


def build_shop(path: Path, *, build: bool = True) -> dict[str, str]:
    with Workspace(Settings(store=path)) as ws:
        keys = {scope: ws.keys.create(f"test-{scope}", scope).key for scope in ("read", "write", "admin")}
        send(ws, *shop_messages())
        if build:
            ws.profiles.build()
    return keys


@pytest.fixture(scope="module")
def built_shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The shop with profiles built, once per module; each test serves a copy."""
    path = tmp_path_factory.mktemp("shop") / "shop.duckdb"
    return path, build_shop(path)


@pytest.fixture
def shop(built_shop: tuple[Path, dict[str, str]], store_path: Path) -> Iterator[Shop]:
    template, keys = built_shop
    shutil.copyfile(template, store_path)
    with PatronServer(store_path, env={"PATRON_SEGMENTS_AS_OF": NOW.isoformat()}) as server:
        yield Shop(server.url, keys["read"], keys["write"], keys["admin"])


def emails(rows: list[dict[str, Any]]) -> set[str]:
    return {row["email"] for row in rows}


def test_reading_takes_a_read_key_and_changing_an_admin_key(shop: Shop) -> None:
    shop.created({"name": "us", "where": "country = 'US'"})
    reads = ["/v1/segments", "/v1/segments/us", "/v1/segments/us/members", "/v1/segments/us/overlap/us",
             "/v1/segments/attributes", "/v1/rfm"]  # fmt: skip
    for path in reads:
        assert shop.get(path).status_code == 200, path
        assert shop.get(path, key=shop.admin).status_code == 200, path  # admin carries every scope
        missing = shop.get(path, key=None)
        assert missing.status_code == 401 and "a read key is required" in missing.json()["message"], path
        assert missing.headers["WWW-Authenticate"] == 'Basic realm="patron"'
        browser = shop.get(path, key=shop.write)
        assert browser.status_code == 401 and "scope 'write'" in browser.json()["message"], path
    preview = shop.post("/v1/segments/preview", {"where": "age > 30"}, key=shop.write)
    assert preview.status_code == 401
    changes = [("POST", "/v1/segments", {"name": "x", "where": "age > 30"}), ("PATCH", "/v1/segments/us", {"description": "d"}),
               ("DELETE", "/v1/segments/us", None), ("POST", "/v1/segments/refresh", {})]  # fmt: skip
    for method, path, body in changes:
        for key in (shop.read, shop.write):
            answer = shop.call(method, path, key, json=body)
            assert answer.status_code == 401 and "not 'admin'" in answer.json()["message"], (method, path)
        assert shop.call(method, path, None, json=body).status_code == 401
    # The key is checked before the body: no key and a bad body is still 401.
    assert shop.post("/v1/segments", {"nonsense": 1}, key=None).status_code == 401
    assert shop.get("/v1/segments/us").json()["description"] == ""  # nothing above changed it
    # HTTP Basic with the key as user name works as for profiles.
    assert httpx.get(f"{shop.url}/v1/segments", auth=(shop.read, "")).status_code == 200


def test_define_list_show_and_read_members(shop: Shop) -> None:
    answer = shop.post("/v1/segments", {"name": "us", "where": "country = 'US'", "description": "Americans"})
    assert answer.status_code == 201 and answer.headers["Location"] == "/v1/segments/us"
    created = answer.json()
    assert (created["name"], created["kind"], created["size"], created["profiles"]) == ("us", "dynamic", 3, 8)
    assert created["share"] == pytest.approx(3 / 8) and created["entries"] == 3
    assert isinstance(created["warnings"], list)
    shop.created({"name": "big-spenders", "where": "total_revenue > 300"})

    listed = shop.get("/v1/segments").json()
    assert [(s["name"], s["size"]) for s in listed] == [("big-spenders", 1), ("us", 3)]
    assert listed[1]["query"] == "country = 'US'" and listed[1]["description"] == "Americans"
    shown = shop.get("/v1/segments/us").json()
    assert shown["size"] == 3 and shown["used_by"] == [] and shown["exits"] == 0

    members = shop.get("/v1/segments/us/members").json()
    assert (members["segment"], members["at"], members["count"]) == ("us", None, 3)
    assert emails(members["members"]) == US
    assert set(members["members"][0]) == {"profile_id", "email", "entered_at"}
    assert [m["profile_id"] for m in members["members"]] == sorted(m["profile_id"] for m in members["members"])
    first = shop.get("/v1/segments/us/members", limit=1).json()
    assert first["count"] == 1 and first["members"] == members["members"][:1]

    exported = shop.get("/v1/segments/us/members", format="csv")
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    assert 'filename="us-members.csv"' in exported.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert exported.text.splitlines()[0] == "profile_id,email,entered_at"
    assert {r["email"] for r in rows} == US
    assert {r["profile_id"] for r in rows} == {m["profile_id"] for m in members["members"]}
    assert all(datetime.fromisoformat(r["entered_at"]) for r in rows)

    bad_format = shop.get("/v1/segments/us/members", format="xml")
    assert bad_format.status_code == 400 and bad_format.json()["field"] == "format"
    assert shop.get("/v1/segments/us/members", limit=0).json()["field"] == "limit"


def test_bad_requests_name_the_field(shop: Shop) -> None:
    shop.created({"name": "us", "where": "country = 'US'"})
    cases = [
        ({"name": "x", "where": "age > 1", "colour": "red"}, "colour", "Extra inputs"),
        ({"where": "age > 1"}, "name", "Field required"),
        ({"name": "-x", "where": "age > 1"}, "name", "pattern"),
        ({"name": "x", "where": "age > 1", "static": "yes"}, "static", "boolean"),
        ({"name": "x", "where": "age > 1", "as_of": "last tuesday"}, "as_of", "not a date"),
        ({"name": "x"}, "where", "one of the two"),
        ({"name": "x", "where": "age > 1", "ids": ["u1"]}, "where", "one of the two"),
        ({"name": "x", "ids": []}, "ids", "at least 1"),
        ({"name": "attributes", "where": "age > 1"}, "name", "path of this API"),
    ]
    for body, field, words in cases:
        answer = shop.post("/v1/segments", body)
        assert answer.status_code == 400, body
        error = answer.json()
        assert error["success"] is False and error["field"] == field and words in error["message"], (body, error)
    duplicate = shop.post("/v1/segments", {"name": "us", "where": "age > 1"})
    assert duplicate.status_code == 409 and duplicate.json()["code"] == "segment_exists"
    assert [s["name"] for s in shop.get("/v1/segments").json()] == ["us"]
    for path in ("/v1/segments/nope", "/v1/segments/nope/members", "/v1/segments/us/overlap/nope"):
        missing = shop.get(path)
        assert missing.status_code == 404 and missing.json()["code"] == "unknown_segment", path
    assert shop.call("DELETE", "/v1/segments/nope").status_code == 404
    assert shop.call("PATCH", "/v1/segments/nope", json={"description": "d"}).status_code == 404
    refresh = shop.post("/v1/segments/refresh", {"names": ["nope"]})
    assert refresh.status_code == 404 and "nope" in refresh.json()["message"]


def test_preview_counts_and_underlines_a_bad_query(shop: Shop) -> None:
    result = shop.post("/v1/segments/preview", {"where": "country = 'US' AND age > 30", "sample": 5}).json()
    assert (result["count"], result["profiles"]) == (2, 8) and result["share"] == pytest.approx(0.25)
    assert emails(result["sample"]) == {"u1@shop.com", "u8@shop.com"}
    assert result["time_dependent"] is False and isinstance(result["warnings"], list)
    recent = shop.post("/v1/segments/preview", {"where": "performed('Order Completed', within 30d)", "sample": 0}).json()
    assert recent["count"] == 5 and recent["sample"] == [] and recent["time_dependent"] is True  # u1, u5, u6, u7, u8
    then = shop.post("/v1/segments/preview", {"where": "performed('Order Completed', within 30d)", "as_of": "2024-02-10"})
    assert emails(then.json()["sample"]) == {"u1@shop.com"}  # 15 January; u3's 5 January is 36 days before

    bad = shop.post("/v1/segments/preview", {"where": "country = 'US' AND agee > 30"})
    assert bad.status_code == 400
    error = bad.json()
    assert error["code"] == "invalid_segment_query" and error["field"] == "where"
    assert (error["line"], error["column"], error["token"]) == (1, 20, "agee")
    assert error["message"].startswith("column 20: ") and error["reason"] in error["message"]
    broken = shop.post("/v1/segments/preview", {"where": "country =\n  AND age > 30"}).json()
    assert broken["field"] == "where" and broken["line"] == 2 and broken["token"] == "AND"
    # The same body on create and update answers the same way.
    create = shop.post("/v1/segments", {"name": "x", "where": "agee > 30"}).json()
    assert (create["code"], create["column"], create["token"]) == ("invalid_segment_query", 1, "agee")
    assert shop.get("/v1/segments").json() == []
    too_many = shop.post("/v1/segments/preview", {"where": "age > 1", "sample": 1001})
    assert too_many.status_code == 400 and too_many.json()["field"] == "sample"
    assert shop.post("/v1/segments/preview", {"where": ""}).json()["field"] == "where"


def test_members_at_a_past_moment_after_a_refresh(shop: Shop) -> None:
    shop.created({"name": "us", "where": "country = 'US'"})
    shop.created({"name": "buyers", "where": "order_count > 0", "static": True})
    time.sleep(0.05)
    before = datetime.now(UTC)
    time.sleep(0.05)
    # u4 moves to Britain, through the collection API (the server holds the store).
    moved = httpx.post(f"{shop.url}/v1/identify", auth=(shop.write, ""), json={
        "userId": "u4", "traits": {"country": "GB"}, "timestamp": "2024-06-29T00:00:00Z", "messageId": "u4-moves"})  # fmt: skip
    assert moved.status_code == 200, moved.text
    report = shop.post("/v1/segments/refresh", {}).json()
    assert report["mode"] in ("incremental", "full")
    assert report["segments"]["us"] == {"mode": report["segments"]["us"]["mode"], "entered": 0, "exited": 1, "size": 2}
    assert "buyers" not in report["segments"]  # static: never evaluated again

    now = shop.get("/v1/segments/us/members").json()
    assert emails(now["members"]) == US - {"u4@example.com"}
    at = before.isoformat().replace("+00:00", "Z")
    then = shop.get("/v1/segments/us/members", at=at).json()
    assert emails(then["members"]) == US and then["at"] == before.replace(tzinfo=None).isoformat()
    offset = before.astimezone().isoformat()  # the same instant in the machine's own zone
    assert emails(shop.get("/v1/segments/us/members", at=offset).json()["members"]) == US
    # A date is the end of that day; the segment did not exist on 1 January 2024.
    long_ago = shop.get("/v1/segments/us/members", at="2024-01-01").json()
    assert (long_ago["at"], long_ago["count"]) == ("2024-01-01", 0)
    bad = shop.get("/v1/segments/us/members", at="yesterday")
    assert bad.status_code == 400 and bad.json()["field"] == "at" and "not a date" in bad.json()["message"]
    shown = shop.get("/v1/segments/us").json()
    assert (shown["entries"], shown["exits"], shown["size"]) == (3, 1, 2)
    # Nothing changed since: the next refresh has nothing to evaluate for it.
    again = shop.post("/v1/segments/refresh", {"names": ["us"], "full": True}).json()
    assert again["mode"] == "full" and again["segments"]["us"]["entered"] == 0 == again["segments"]["us"]["exited"]
    assert shop.post("/v1/segments/refresh").status_code == 200  # the body is optional


def test_update_a_query_or_description(shop: Shop) -> None:
    shop.created({"name": "us", "where": "country = 'US'"})
    shop.created({"name": "frozen", "where": "country = 'US'", "static": True})
    described = shop.call("PATCH", "/v1/segments/us", json={"description": "our home market"})
    assert described.status_code == 200 and described.json()["description"] == "our home market"
    assert described.json()["size"] == 3
    redefined = shop.call("PATCH", "/v1/segments/us", json={"where": "country = 'DE'"}).json()
    assert (redefined["query"], redefined["size"], redefined["exits"]) == ("country = 'DE'", 2, 3)
    assert emails(shop.get("/v1/segments/us/members").json()["members"]) == {"u6@shop.com", "u7@shop.com"}
    bad = shop.call("PATCH", "/v1/segments/us", json={"where": "country = = 'FR'"}).json()
    assert bad["code"] == "invalid_segment_query" and bad["field"] == "where" and bad["column"] == 11
    static = shop.call("PATCH", "/v1/segments/frozen", json={"where": "age > 1"})
    assert static.status_code == 400 and "static" in static.json()["message"]
    empty = shop.call("PATCH", "/v1/segments/us", json={})
    assert empty.status_code == 400 and empty.json()["field"] == "where"
    cycle = shop.call("PATCH", "/v1/segments/us", json={"where": "in_segment('us')"})
    assert cycle.status_code == 400 and cycle.json()["code"] == "segment_cycle"
    assert shop.get("/v1/segments/us").json()["query"] == "country = 'DE'"


def test_static_list_from_emails_overlap_and_delete(shop: Shop) -> None:
    shop.created({"name": "us", "where": "country = 'US'"})
    listed = shop.created({"name": "vip", "ids": ["U1@Shop.com", " u4@example.com", "u2", "ghost@nowhere.io"]})
    assert (listed["kind"], listed["origin"], listed["size"]) == ("static", "upload", 3)
    assert listed["unmatched"] == 1 and listed["unmatched_sample"] == ["ghost@nowhere.io"]
    assert emails(shop.get("/v1/segments/vip/members").json()["members"]) == {"u1@shop.com", "u2@shop.com", "u4@example.com"}

    overlap = shop.get("/v1/segments/us/overlap/vip").json()
    assert (overlap["a"], overlap["b"], overlap["both"], overlap["only_a"], overlap["only_b"]) == ("us", "vip", 2, 1, 1)
    assert overlap["jaccard"] == pytest.approx(2 / 4)

    shop.created({"name": "vip-us", "where": "in_segment('vip') AND country = 'US'"})
    assert shop.get("/v1/segments/vip").json()["used_by"] == ["vip-us"]
    refused = shop.call("DELETE", "/v1/segments/vip")
    assert refused.status_code == 409 and "vip-us" in refused.json()["message"]
    assert shop.call("DELETE", "/v1/segments/vip-us").json() == {"deleted": "vip-us", "members": 2}
    assert shop.call("DELETE", "/v1/segments/vip").json() == {"deleted": "vip", "members": 3}
    assert shop.get("/v1/segments/vip").status_code == 404
    assert [s["name"] for s in shop.get("/v1/segments").json()] == ["us"]


def test_attributes_and_rfm(shop: Shop) -> None:
    attributes = {a["name"]: a for a in shop.get("/v1/segments/attributes").json()}
    assert (attributes["country"]["kind"], attributes["country"]["source"]) == ("string", "trait")
    assert (attributes["order_count"]["kind"], attributes["order_count"]["source"]) == ("number", "computed")
    assert (attributes["rfm_group"]["kind"], attributes["rfm_group"]["source"]) == ("string", "rfm")
    assert attributes["tags"]["kind"] == "list" and attributes["birthday"]["kind"] == "date"

    rfm = shop.get("/v1/rfm").json()
    assert rfm["as_of"] == NOW.isoformat()
    assert (rfm["purchasers"], rfm["prospects"]) == (7, 1)  # u4 never ordered
    assert sum(g["customers"] for g in rfm["groups"]) == 7 and set(rfm["thresholds"]) == {"r", "f", "m"}
    earlier = shop.get("/v1/rfm", as_of="2024-03-01T00:00:00+01:00").json()
    assert earlier["as_of"] == "2024-02-29T23:00:00"
    bad = shop.get("/v1/rfm", as_of="soon")
    assert bad.status_code == 400 and bad.json()["field"] == "as_of"


def test_before_profiles_are_built(store_path: Path) -> None:
    keys = build_shop(store_path, build=False)
    with PatronServer(store_path) as server:
        shop = Shop(server.url, keys["read"], keys["write"], keys["admin"])
        assert shop.get("/v1/segments").json() == []
        for answer in (shop.post("/v1/segments", {"name": "us", "where": "country = 'US'"}),
                       shop.post("/v1/segments/preview", {"where": "country = 'US'"}),
                       shop.get("/v1/segments/attributes"), shop.get("/v1/rfm")):  # fmt: skip
            assert answer.status_code == 409 and answer.json()["code"] == "profiles_not_built", answer.text
        # A refresh builds them first.
        assert shop.post("/v1/segments/refresh", {}).json()["mode"] == "none"
        assert shop.post("/v1/segments", {"name": "us", "where": "country = 'US'"}).status_code == 201
