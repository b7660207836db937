"""The import component of the workspace: ``workspace.imports.orders(path, ...)``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from patron.collect.importers.customers import CustomerOptions, import_customers
from patron.collect.importers.events import import_events
from patron.collect.importers.exceptions import ImportFileError
from patron.collect.importers.orders import OrderOptions, import_orders
from patron.collect.importers.report import ImportReport, Progress
from patron.collect.spec import MessageValidator, content_message_id
from patron.config import Settings
from patron.store.base import Store


def _check_source(path: Path, source_id: str) -> None:
    if not source_id.strip():
        raise ImportFileError(path, "--source must not be empty")


class Importers:
    """Imports files into the store, under the same limits as the tracking API."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings

    def events(
        self, path: Path, *, source_id: str = "import", progress: Progress | None = None
    ) -> ImportReport:
        """Segment-spec messages from a JSONL, JSON or Parquet file."""
        _check_source(Path(path), source_id)
        validator = MessageValidator(
            max_message_bytes=self.settings.max_message_bytes,
            max_future=self.settings.max_future,
            message_id_fallback=content_message_id,
        )
        return import_events(self.store, validator, Path(path), source_id=source_id, progress=progress)

    def orders(
        self,
        path: Path,
        *,
        source_id: str = "import:orders",
        mapping: Mapping[str, str] | None = None,
        currency: str = "USD",
        date_format: str | None = None,
        progress: Progress | None = None,
    ) -> ImportReport:
        """Orders from a CSV or Parquet file, one ``Order Completed`` event each."""
        _check_source(Path(path), source_id)
        options = OrderOptions(
            source_id=source_id,
            mapping=dict(mapping or {}),
            currency=currency,
            date_format=date_format,
            max_future=self.settings.max_future,
            max_message_bytes=self.settings.max_message_bytes,
        )
        return import_orders(self.store, Path(path), options, progress)

    def customers(
        self,
        path: Path,
        *,
        id_column: str,
        source_id: str = "crm",
        mapping: Mapping[str, str] | None = None,
        progress: Progress | None = None,
    ) -> ImportReport:
        """CRM records from a CSV or Parquet file, one ``identify`` each."""
        _check_source(Path(path), source_id)
        options = CustomerOptions(
            id_column=id_column,
            source_id=source_id,
            mapping=dict(mapping or {}),
            max_future=self.settings.max_future,
            max_message_bytes=self.settings.max_message_bytes,
        )
        return import_customers(self.store, Path(path), options, progress)
