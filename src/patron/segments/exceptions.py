"""Errors of the segments layer."""

from __future__ import annotations

from patron.exceptions import PatronError


class SegmentError(PatronError):
    """Segments could not do what was asked."""

    http_status = 400
    code = "segment_error"


class SegmentQueryError(SegmentError):
    """A segment query that cannot be used: bad syntax, an unknown attribute, a value of
    the wrong type. The message names the token, its column and what was expected."""

    code = "invalid_segment_query"

    def __init__(self, message: str, *, column: int | None = None, line: int | None = None, token: str | None = None) -> None:
        self.column = column
        self.line = line
        self.token = token
        self.reason = message
        where = ""
        if column is not None:
            where = f"line {line}, column {column}: " if line not in (None, 1) else f"column {column}: "
        super().__init__(f"{where}{message}")


class UnknownSegment(SegmentError):
    http_status = 404
    code = "unknown_segment"

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"no segment named {name!r}; `patron segments list` shows them")


class SegmentExists(SegmentError):
    http_status = 409
    code = "segment_exists"

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"a segment named {name!r} exists; delete it first or choose another name")


class SegmentInUse(SegmentError):
    """A segment other segments refer to (``in_segment``) cannot be deleted."""

    http_status = 409
    code = "segment_in_use"

    def __init__(self, name: str, users: list[str]) -> None:
        self.name = name
        self.users = users
        super().__init__(f"segment {name!r} is used by {', '.join(users)} (in_segment); delete those first")


class SegmentCycle(SegmentError):
    """``in_segment`` references that loop back to the segment being defined."""

    code = "segment_cycle"

    def __init__(self, path: list[str]) -> None:
        self.path = path
        super().__init__("segments may not refer to themselves: " + " -> ".join(path))


class ClusteringUnavailable(SegmentError):
    """scikit-learn (``patron[cluster]``) is not installed."""

    http_status = 501
    code = "clustering_unavailable"

    def __init__(self) -> None:
        super().__init__("clustering needs scikit-learn: pip install 'patron[cluster]'")
