"""Errors of the collection layer."""

from __future__ import annotations

from patron.exceptions import PatronError


class CollectError(PatronError):
    """A message or request could not be collected."""

    http_status = 400
    code = "collect_error"


class InvalidMessage(CollectError, ValueError):
    """One message breaks the tracking spec; ``field`` names the offending field."""

    code = "invalid_message"

    def __init__(self, field: str, reason: str, *, index: int | None = None) -> None:
        self.field = field
        self.reason = reason
        self.index = index
        where = f"message {index}: " if index is not None else ""
        super().__init__(f"{where}{field}: {reason}" if field else f"{where}{reason}")


class InvalidPayload(CollectError, ValueError):
    """A request body cannot be used at all: not JSON, bad gzip, too large, wrong shape."""

    code = "invalid_payload"

    def __init__(
        self, reason: str, *, field: str | None = None, code: str | None = None, status: int = 400
    ) -> None:
        self.field = field
        self.reason = reason
        self.http_status = status
        if code:
            self.code = code
        super().__init__(reason)


class AuthenticationError(CollectError):
    """The request carries no write key, or one Patron does not know."""

    http_status = 401
    code = "unauthorized"


class WriterClosed(CollectError):
    """The durable writer is stopping and takes no more messages."""

    http_status = 503
    code = "shutting_down"

    def __init__(self) -> None:
        super().__init__("the server is shutting down; retry against a running server")


class KeyNameError(PatronError, ValueError):
    """A key name that is malformed or already taken."""

    http_status = 400
    code = "invalid_key_name"


class UnknownKey(PatronError, LookupError):
    """No active key has this name."""

    http_status = 404
    code = "unknown_key"

    def __init__(self, name: str) -> None:
        super().__init__(f"no active key named {name!r}; `patron keys list` shows the names")
