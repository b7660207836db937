"""The parity suite: every test here runs on every backend and must give DuckDB's results.

Each test takes the ``backend`` fixture (``duckdb`` always; ``spark`` in local mode,
marked ``spark``) and feeds a :class:`Pipeline`: messages are collected into an embedded
store, as the HTTP service does, and on Spark appended to a lake
(``patron export events --append``) that a Spark workspace computes from. The result
is compared with a DuckDB workspace that took the same messages and built in full.

``pytest -m "not spark"`` runs the DuckDB half only (no JVM: for quick iteration);
``make test`` runs both. Every later analytical feature adds its case here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from patron.config import Settings
from patron.workspace import Workspace
from tests.conftest import SPARK_MASTER
from tests.identity.test_incremental import store as collect


@pytest.fixture(params=["duckdb", pytest.param("spark", marks=pytest.mark.spark)])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "spark":
        request.getfixturevalue("spark")
    return str(request.param)


class Pipeline:
    """Messages collected into an embedded store and computed on ``backend``."""

    def __init__(self, backend: str, root: Path, **settings: Any) -> None:
        self.backend = backend
        self.collection = Workspace(Settings(store=root / "collect.duckdb", **settings))
        self.lake = root / "lake"
        if backend == "spark":
            self.ws = None
            self._settings = Settings(store=self.lake, backend="spark", spark_master=SPARK_MASTER, **settings)
        else:
            self.ws = self.collection

    def collect(self, messages: list[dict[str, Any]], source_id: str = "web") -> None:
        collect(self.collection, messages, source_id)
        if self.backend == "spark":
            self.collection.events.export(self.lake, append=True)

    @property
    def workspace(self) -> Workspace:
        if self.ws is None:  # opened after the first export: the lake must exist
            self.ws = Workspace(self._settings)
        return self.ws

    def close(self) -> None:
        if self.ws is not None and self.ws is not self.collection:
            self.ws.close()
        self.collection.close()


@pytest.fixture
def pipeline(backend: str, tmp_path: Path) -> Iterator[Pipeline]:
    made = Pipeline(backend, tmp_path)
    yield made
    made.close()


@pytest.fixture
def reference(tmp_path: Path) -> Iterator[Workspace]:
    """A DuckDB workspace to compare with: same messages, one full build."""
    with Workspace(Settings(store=tmp_path / "reference.duckdb")) as ws:
        yield ws
