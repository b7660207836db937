"""Errors of the file importers.

    ImportFileError          the file cannot be imported at all (missing, unknown format,
    │                        unparseable, empty, bad option)
    └── MissingColumn        a mapped column is not in the file (lists the file's columns)

Problems with single rows or messages are not exceptions: they are rejected into the
failed-events table and counted in the :class:`~patron.collect.importers.report.ImportReport`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from patron.exceptions import PatronError


class ImportFileError(PatronError, ValueError):
    """A file that cannot be imported; the message names the file and what to do."""

    http_status = 400
    code = "import_file_error"

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class MissingColumn(ImportFileError):
    """A column named by the mapping (or required by default) is not in the file."""

    code = "missing_column"

    def __init__(
        self, path: Path | str, field: str, column: str, columns: Sequence[str], hint: str
    ) -> None:
        self.field = field
        self.column = column
        self.columns = list(columns)
        shown = ", ".join(self.columns) if self.columns else "none"
        super().__init__(
            path, f"no column {column!r} for {field} ({hint}); the file's columns are: {shown}"
        )
