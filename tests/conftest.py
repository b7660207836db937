"""Fixtures shared by the whole suite: a store on disk, a write key, a running server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from patron.config import Settings
from patron.workspace import Workspace
from tests.servers import PatronServer

#: The parity suite's Spark: local mode on two cores, as the issue asks.
SPARK_MASTER = "local[2]"


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """One Spark session (a JVM) for the whole run: starting one takes 5-15 s."""
    from patron.store.spark import spark_session

    session = spark_session(SPARK_MASTER, {"spark.sql.shuffle.partitions": "4"})
    yield session
    session.stop()


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "patron.duckdb"


@pytest.fixture
def workspace(store_path: Path) -> Iterator[Workspace]:
    with Workspace(Settings(store=store_path)) as ws:
        yield ws


@pytest.fixture
def write_key(store_path: Path) -> str:
    with Workspace(Settings(store=store_path)) as ws:
        return ws.keys.create("test-source", "write").key


@pytest.fixture
def server(store_path: Path, write_key: str) -> Iterator[PatronServer]:
    """A `patron serve` on a free loopback port, stopped gracefully afterwards."""
    with PatronServer(store_path) as running:
        yield running
