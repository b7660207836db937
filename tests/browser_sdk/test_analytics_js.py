"""Segment's Analytics.js 2.0 in a real headless Chromium, loaded from a page on loopback.

The page sets only ``cdnURL`` to Patron's address: Patron serves the settings document
the SDK fetches at start-up, then receives its events on the SDK's own paths (``/v1/p``,
``/v1/i``, ... or ``/v1/b`` when batching), cross-origin, with the write key in the body
or in a Basic header. `make test` installs the SDK with npm and bundles it with esbuild
(nothing is fetched from a CDN), and Debian's chromium.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from patron.config import Settings
from patron.workspace import Workspace
from tests.servers import PatronServer

HERE = Path(__file__).parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def shop_url() -> Iterator[str]:
    """The test shop's page, served from this folder on its own loopback port (another origin)."""
    assert (HERE / "dist" / "analytics.js").is_file(), "run `make test` (it bundles the SDK here)"
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(HERE)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/index.html"
    httpd.shutdown()
    httpd.server_close()


def _wait_for_rows(server: PatronServer, rows: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if httpx.get(f"{server.url}/health").json()["rows_committed"] >= rows:
            return
        time.sleep(0.1)
    raise AssertionError(f"fewer than {rows} events arrived: {server.output()[-2000:]}")


@pytest.mark.parametrize("strategy", ["standard", "batching"])
def test_analytics_js_delivers_every_call_from_the_browser(
    store_path: Path, write_key: str, shop_url: str, strategy: str
) -> None:
    from playwright.sync_api import sync_playwright

    with PatronServer(store_path) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            errors: list[str] = []
            posted: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("request", lambda r: posted.append(r.method + " " + r.url.removeprefix(server.url)) if r.url.startswith(server.url) else None)
            page.goto(shop_url)
            anonymous_id = page.evaluate(
                "([url, key, strategy]) => window.runTracking(url, key, strategy)",
                [server.url, write_key, strategy],
            )
            _wait_for_rows(server, 5)
            assert errors == []
            assert f"GET /v1/projects/{write_key}/settings" in posted
            paths = {p for p in posted if p.startswith("POST")}
            if strategy == "batching":
                assert paths == {"POST /v1/b"}
            else:
                assert paths == {f"POST /v1/{letter}" for letter in "pitga"}
        finally:
            browser.close()
    with Workspace(Settings(store=store_path)) as ws:
        events = ws.store.to_pyarrow(ws.store.events().order_by("seq")).to_pylist()
    assert [e["type"] for e in events] == ["page", "identify", "track", "group", "alias"]
    assert {e["source_id"] for e in events} == {"test-source"}
    assert len({e["message_id"] for e in events}) == 5
    raw = [json.loads(e["raw"]) for e in events]
    assert all(m["context"]["library"]["name"] == "analytics.js" for m in raw)
    assert all("HeadlessChrome" in m["context"]["userAgent"] or "Chrome" in m["context"]["userAgent"] for m in raw)
    assert all(e["anonymous_id"] == anonymous_id for e in events)
    assert events[0]["name"] == "Home" and raw[0]["context"]["page"]["url"] == shop_url
    assert events[2]["event"] == "Product Viewed" and raw[2]["properties"]["price"] == 12.5
    assert [e["user_id"] for e in events[1:]] == ["browser-user-1"] * 4
    # alias(to) links from the current user id once one is known (Analytics.js rule).
    assert events[3]["group_id"] == "acme" and events[4]["previous_id"] == "browser-user-1"
