"""Typed settings, read once from the environment (``PATRON_`` prefix) and passed explicitly."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_STORE = Path("patron.duckdb")


class Settings(BaseSettings):
    """Everything Patron can be told from the outside.

    Every field can be set as ``PATRON_<FIELD>`` in the environment; command-line
    options (``--store``) override the environment.
    """

    model_config = SettingsConfigDict(env_prefix="PATRON_", extra="ignore")

    store: Path = Field(DEFAULT_STORE, description="The DuckDB store file, or with backend spark the lake folder.")
    """Path of the embedded DuckDB store file; with ``backend = "spark"``, the lake's
    folder (written by ``patron export events --to PATH``)."""

    backend: Literal["duckdb", "spark"] = "duckdb"
    """The engine that stores and computes: the embedded DuckDB file (default), or Apache
    Spark on a lake of Parquet files (``pip install 'patron[spark]'``, Java 17)."""

    spark_master: str = "local[*]"
    """Where Spark runs with ``backend = "spark"``: ``local[*]`` (every core of this
    machine), ``local[4]``, ``spark://host:7077``, ``yarn``, ``k8s://...``. Ignored
    under ``spark-submit``, which sets the master itself."""

    spark_conf: dict[str, str] = {}
    """More Spark settings, e.g. ``{"spark.driver.memory": "8g"}``
    (``PATRON_SPARK_CONF='{"spark.driver.memory": "8g"}'``)."""

    host: str = "127.0.0.1"
    """Interface the HTTP server binds to."""

    port: int = 8000
    """Port the HTTP server listens on."""

    public_url: str | None = None
    """Address browsers reach this server at (``https://cdp.example.com``), named in the
    settings document served to Analytics.js; by default the address of the request."""

    cors_origins: list[str] = ["*"]
    """Origins allowed to call the API from a browser (write keys are public there anyway)."""

    max_message_bytes: int = 32 * 1024
    """Largest accepted message, serialised as JSON (Segment's limit: 32 KB)."""

    max_batch_bytes: int = 500 * 1024
    """Largest accepted request body after decompression (Segment's limit: 500 KB)."""

    max_future_seconds: float = 24 * 3600
    """How far past the time of receipt a corrected event timestamp may lie before the
    message is rejected as a far-future timestamp."""

    checkpoint_threshold: str = "256MB"
    """Write-ahead-log size at which the store folds the log into the file (DuckDB's
    ``checkpoint_threshold``; its own default is 16MB). Larger: faster ingestion, more
    memory, a longer replay after a crash."""

    memory_limit: str | None = None
    """Most memory the engine may use for data ("4GB"); beyond it, large rebuilds spill to
    disk. Unset: DuckDB's own default, 80% of the machine's memory."""

    @field_validator("memory_limit")
    @classmethod
    def _memory_size(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"\s*\d+(\.\d+)?\s*([KMGT]i?B|B)\s*", value, re.IGNORECASE):
            raise ValueError(f"PATRON_MEMORY_LIMIT must be a size such as 512MB or 4GB, not {value!r}")
        return value

    identity_default_region: str = "US"
    """Country (ISO code) for phone numbers written without a country code."""

    identity_email_provider_rules: bool = False
    """Apply Gmail's rules to gmail.com addresses (dots and +tags ignored) when matching."""

    identity_blocked_values: list[str] | None = None
    """Regular expressions for placeholder identifier values never to match on
    (default: ``patron.identity.identifiers.DEFAULT_BLOCKED_VALUES``)."""

    identity_limits: dict[str, int] = {"user_id": 1, "email": 5, "phone": 5}
    """Most identifiers of each type one profile may hold; a link that would break a limit
    is refused. ``{"user_id": 1}`` means two user ids are never merged automatically."""

    identity_priority: list[str] = ["user_id", "external", "email", "phone", "anonymous_id"]
    """Identifier types strongest first: links between stronger identifiers are taken
    first, so they win when a limit forces a choice."""

    identity_match_threshold: float = 0.5
    """Match probability at or above which the probabilistic pass links two profiles."""

    identity_review_threshold: float = 0.1
    """Match probability at or above which a pair below the match threshold is listed for
    review (``patron identity review``)."""

    identity_match_on: list[str] = []
    """Custom traits the probabilistic pass compares besides the standard ones (a
    national id, a loyalty card number); ``patron identity match --on`` adds more."""

    profile_source_priority: list[str] = []
    """Sources whose trait values win over others whatever their time, strongest first
    (e.g. ``["crm"]`` when the CRM is the reference for names and addresses); values
    from sources not listed follow the latest-wins rule."""

    segments_as_of: datetime | None = None
    """Evaluate segments as of this instant (UTC) instead of the clock: relative dates
    (``-30d``) and windows (``within 7d``) count back from it and later events are left
    out. For data from the past, such as the bundled 1997-1998 demo
    (``PATRON_SEGMENTS_AS_OF=1998-07-01``); ``--as-of`` overrides it per command."""

    segments_time_refresh_minutes: float = 60.0
    """An incremental refresh re-evaluates a segment whose query depends on the clock
    over every profile when its last full evaluation is older than this."""

    writer_max_group_rows: int = 20_000
    """Most messages the durable writer commits in one transaction."""

    @property
    def max_future(self) -> timedelta:
        return timedelta(seconds=self.max_future_seconds)

    def with_store(self, store: Path | None, backend: str | None = None) -> Settings:
        """A copy with ``store`` and ``backend`` replaced, when given (``--store``, ``--backend``)."""
        update: dict[str, object] = {}
        if store is not None:
            update["store"] = store
        if backend is not None:
            update["backend"] = backend
        return self.model_copy(update=update) if update else self
