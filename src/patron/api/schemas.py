"""Pydantic models of the tracking API, for the OpenAPI document and typed clients.

The hot path validates with :mod:`patron.collect.spec` instead of these models (see
docs/decisions/002-hand-written-message-validation.md); both describe the same rules,
and ``tests/api/test_openapi.py`` checks that valid examples satisfy both.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

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
