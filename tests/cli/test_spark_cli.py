"""The command line on the Spark backend: --backend, spark-submit, and its errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from patron.cli import spark_job
from tests.cli.test_keys_events import assert_one_line_error, patron


def test_a_missing_lake_or_the_collection_service_on_spark_is_one_line(tmp_path: Path) -> None:
    # Both are refused before any JVM starts.
    missing = patron("--backend", "spark", "profiles", "build", "--store", str(tmp_path / "nowhere"))
    assert_one_line_error(missing, "is not a lake folder")
    serve = patron("serve", "--store", str(tmp_path), env={"PATRON_BACKEND": "spark"})
    assert_one_line_error(serve, "collection service runs on the embedded store")
    wrong = patron("--backend", "oracle", "events", "count")
    assert wrong.returncode != 0 and "oracle" in wrong.stderr and "Traceback" not in wrong.stderr


@pytest.mark.spark
def test_spark_submit_builds_profiles_from_an_exported_lake(tmp_path: Path) -> None:
    """The packaging path of docs/spark.md, on a local master: collect into the embedded
    store, append to the lake, build with spark-submit, read the result back."""
    store, lake = tmp_path / "collect.duckdb", tmp_path / "lake"
    messages = tmp_path / "events.jsonl"
    rows = [{"type": "identify", "userId": f"u{i}", "traits": {"email": f"u{i}@x.example", "plan": "pro"},
             "messageId": f"m{i}", "timestamp": "2024-05-01T10:00:00Z"} for i in range(5)]  # fmt: skip
    messages.write_text("\n".join(json.dumps(r) for r in rows))
    assert patron("import", "events", str(messages), "--store", str(store)).returncode == 0
    assert patron("export", "events", "--to", str(lake), "--append", "--store", str(store)).returncode == 0
    submit = Path(sys.executable).parent / "spark-submit"
    built = subprocess.run(
        [str(submit), "--master", "local[2]", "--conf", "spark.ui.enabled=false", str(spark_job.__file__),
         "profiles", "build", "--json", "--store", str(lake)],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1"},
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-3000:]
    report = json.loads(built.stdout[built.stdout.index("{") :])
    assert (report["mode"], report["profiles"], report["traits"]) == ("full", 5, 10)
    catalog = json.loads(sorted((lake / "_patron" / "catalog").glob("*.json"))[-1].read_text())
    assert {"profile_computed", "profile_traits", "identity_identifiers"} <= set(catalog["tables"])
