"""Errors of the store layer."""

from __future__ import annotations

from pathlib import Path

from patron.exceptions import PatronError


class StoreError(PatronError):
    """The store could not do what was asked."""

    http_status = 503
    code = "store_error"


class StoreLocked(StoreError):
    """Another process holds the store file open for writing."""

    code = "store_locked"

    def __init__(self, path: Path, detail: str) -> None:
        self.path = path
        self.detail = detail
        super().__init__(
            f"the store {path} is in use by another process ({detail}); stop that process "
            "(often `patron serve`) or point --store / PATRON_STORE at another file"
        )


class StoreUnavailable(StoreError):
    """The store cannot be written: disk full, read-only file, or an I/O failure."""

    code = "store_unavailable"

    def __init__(self, path: Path, detail: str) -> None:
        self.path = path
        self.detail = detail
        super().__init__(
            f"the store {path} cannot be written ({detail}); nothing of the operation that "
            "met this was stored, so retrying is safe once space or permissions are fixed"
        )


class StoreVersionError(StoreError):
    """The store was written by a newer Patron with a schema this one does not know."""

    code = "store_version"

    def __init__(self, path: Path, found: int, supported: int) -> None:
        super().__init__(
            f"the store {path} has schema version {found}, this Patron knows up to "
            f"{supported}; upgrade Patron (pip install -U patron)"
        )


class LakeError(StoreError):
    """A lake (Parquet files by day, store/lake.py) cannot be written or read where asked."""

    http_status = 400
    code = "lake_error"


class BackendUnavailable(StoreError):
    """The engine chosen by ``PATRON_BACKEND`` cannot start: a package or Java missing."""

    http_status = 503
    code = "backend_unavailable"


class NotOnThisStore(StoreError):
    """An operation the chosen store does not do (the Spark store does not collect)."""

    http_status = 400
    code = "not_on_this_store"
