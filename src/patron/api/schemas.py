"""Pydantic models of the tracking API and the segments API, for the OpenAPI document and typed clients.

The tracking hot path validates with :mod:`patron.collect.spec` instead of these models
(see docs/decisions/002-hand-written-message-validation.md); both describe the same
rules, and ``tests/api/test_openapi.py`` checks that valid examples satisfy both. The
segments API's request models (``*Request``) do validate its bodies.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

Identifier = Annotated[str | int, Field(description="A string; integers are stored as strings.")]


class _Common(BaseModel):
    model_config = ConfigDict(extra="allow")

    userId: Identifier | None = Field(None, description="Your id for the person. userId or anonymousId is required.")
    anonymousId: Identifier | None = Field(None, description="A device or browser id, before the person is known.")
    messageId: str | None = Field(None, description="Unique per source; a retried message with the same id is stored once. Made by the server when absent.")
    timestamp: str | None = Field(None, description="ISO-8601 time the event happened on the client (stored as originalTimestamp).")
    sentAt: str | None = Field(None, description="ISO-8601 time the client sent the message; used to correct client clock skew.")
    context: dict[str, Any] | None = Field(None, description="Context: library, ip, userAgent, campaign, page, device, externalIds...")
    integrations: dict[str, Any] | None = None


class IdentifyMessage(_Common):
    """Who the person is: ties the user to their traits."""

    type: Literal["identify"] = "identify"
    traits: dict[str, Any] | None = Field(None, description="Traits such as email, firstName, address.")


class TrackMessage(_Common):
    """Something the person did."""

    type: Literal["track"] = "track"
    event: str = Field(..., min_length=1, description="Name of the action, e.g. 'Order Completed'.")
    properties: dict[str, Any] | None = None


class PageMessage(_Common):
    """A web page the person viewed."""

    type: Literal["page"] = "page"
    name: str | None = None
    properties: dict[str, Any] | None = None


class ScreenMessage(_Common):
    """An app screen the person viewed."""

    type: Literal["screen"] = "screen"
    name: str | None = None
    properties: dict[str, Any] | None = None


class GroupMessage(_Common):
    """Ties the person to a group: a company, an account, a team."""

    type: Literal["group"] = "group"
    groupId: Identifier = Field(..., description="Id of the group.")
    traits: dict[str, Any] | None = None


class AliasMessage(_Common):
    """Merges a previous identity into a user id."""

    type: Literal["alias"] = "alias"
    previousId: Identifier = Field(..., description="The earlier id (often an anonymousId).")
    userId: Identifier = Field(..., description="The id that replaces it.")


AnyMessage = Annotated[
    IdentifyMessage | TrackMessage | PageMessage | ScreenMessage | GroupMessage | AliasMessage,
    Field(discriminator="type"),
]


class BatchRequest(BaseModel):
    """Up to 500 KB of messages of any type; top-level context applies to every message."""

    batch: list[AnyMessage]
    context: dict[str, Any] | None = None
    sentAt: str | None = None
    writeKey: str | None = Field(None, description="Alternative to HTTP Basic authentication.")


class AcceptedResponse(BaseModel):
    """A 200 answer: every accepted message is committed to disk."""

    success: Literal[True] = True
    accepted: int = Field(..., description="Messages stored by this request.")
    duplicates: int = Field(..., description="Messages already stored (same source and messageId), acknowledged again.")
    erased: int | None = Field(
        None, description="Present when some messages belong to people erased on request: acknowledged, never stored."
    )


class RejectedMessage(BaseModel):
    index: int = Field(..., description="Position of the message in the batch array.")
    field: str | None = Field(None, description="The offending field, when one is to blame.")
    reason: str


class BatchResponse(AcceptedResponse):
    rejected: list[RejectedMessage] = Field(
        default_factory=list,
        description="Messages that break the spec; they are kept in the failed-events table.",
    )


class ErrorResponse(BaseModel):
    """Every error: a stable code, a message that says what to do, and the field when one is to blame."""

    success: Literal[False] = False
    code: str
    message: str
    field: str | None = None


class SegmentQueryErrorResponse(ErrorResponse):
    """A segment query that cannot be used; where its culprit is, to underline it."""

    field: str | None = Field("where", description="The body field holding the query.")
    column: int | None = Field(None, description="1-based column of the culprit in its line.")
    line: int | None = Field(None, description="1-based line of the culprit.")
    token: str | None = Field(None, description="The text to underline.")
    reason: str = Field(..., description="What is wrong, without the position.")


def _instant(value: object) -> object:
    # Only text: pydantic alone would also take a number as seconds since 1970.
    if not isinstance(value, str):
        raise ValueError("give a date (2024-01-31) or an ISO time (2024-01-31T12:00:00Z) as a string")
    from patron.segments.dates import parse_instant

    return parse_instant(value)


Instant = Annotated[
    datetime | date,
    BeforeValidator(_instant),
    Field(description="A date (the end of that day, UTC) or an ISO time with Z or an offset."),
]
SegmentName = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$",
        description="1-100 letters, digits, '-', '_' or '.', not starting with '-' or '.'.",
        examples=["vip-us"],
    ),
]
SegmentQuery = Annotated[
    str,
    Field(
        min_length=1, max_length=100_000, description="A segment query.",
        examples=["country = 'US' AND performed('Order Completed', within 90d)"],
    ),
]  # fmt: skip


class _SegmentRequest(BaseModel):
    # Strict: a typo in a field name or "static": "no" must not pass silently.
    model_config = ConfigDict(extra="forbid", strict=True)


class CreateSegmentRequest(_SegmentRequest):
    """A dynamic segment (``where``), a static one frozen from a query (``where`` and
    ``static``), or a static list (``ids``)."""

    name: SegmentName
    where: SegmentQuery | None = None
    static: bool = Field(False, description="Freeze the profiles matching now; never evaluated again.")
    description: str = Field("", max_length=10_000, description="What the segment is for.")
    ids: list[Annotated[str, Field(min_length=1, max_length=1000, pattern=r"^[^\r\n]+$")]] | None = Field(
        None, min_length=1, max_length=1_000_000,
        description="A static list: profile ids (old ones follow their merge), emails or user ids.",
    )  # fmt: skip
    as_of: Instant | None = Field(None, description="Evaluate as of this date or time instead of now.")


class UpdateSegmentRequest(_SegmentRequest):
    """Give ``where``, ``description`` or both."""

    where: SegmentQuery | None = Field(None, description="A new query, evaluated at once (dynamic segments only).")
    description: str | None = Field(None, max_length=10_000)


class PreviewRequest(_SegmentRequest):
    where: SegmentQuery
    sample: int = Field(10, ge=0, le=1000, description="Matching profiles to show.")
    as_of: Instant | None = Field(None, description="Evaluate as of this date or time instead of now.")


class RefreshRequest(_SegmentRequest):
    names: list[str] | None = Field(None, description="Segments to refresh, with those they use (default: all).")
    full: bool = Field(False, description="Evaluate over every profile, not only those changed since the last refresh.")
    as_of: Instant | None = Field(None, description="Evaluate as of this date or time instead of now.")


class HealthResponse(BaseModel):
    status: Literal["ok", "degraded"]
    store: str
    writer_alive: bool
    groups_committed: int
    rows_committed: int
    last_error: str | None = None


DOCUMENTED_MODELS: tuple[type[BaseModel], ...] = (
    IdentifyMessage,
    TrackMessage,
    PageMessage,
    ScreenMessage,
    GroupMessage,
    AliasMessage,
    BatchRequest,
    AcceptedResponse,
    BatchResponse,
    ErrorResponse,
    HealthResponse,
)
