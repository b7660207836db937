"""Reading profiles over HTTP: ``GET /v1/profiles/{id}`` and lookup by any identifier.

Both need a key with the ``read`` (or ``admin``) scope, sent as HTTP Basic user name or
as ``Authorization: Bearer <key>``; write keys live in browsers and must not read.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from patron.api.body import basic_auth_user
from patron.api.errors import json_response
from patron.api.schemas import ErrorResponse
from patron.collect.exceptions import InvalidPayload

router = APIRouter(prefix="/v1/profiles", tags=["profiles"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "Missing key, or a key without the read scope."},
    404: {"model": ErrorResponse, "description": "No profile with this id or identifier."},
    409: {"model": ErrorResponse, "description": "Profiles are not built yet (`patron profiles build`)."},
}
_LOOKUPS = ("user_id", "anonymous_id", "email", "phone")


def _view(request: Request, key: str, limit: int, offset: int) -> Response:
    services = request.app.state.services
    services.keys.authenticate(basic_auth_user(request), scope="read")
    view = services.workspace.profiles.show(key, limit=limit, offset=offset)
    return json_response(view)


@router.get("/{profile_id}", summary="One customer's whole view", responses=_ERRORS)
def get_profile(
    profile_id: str,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=1000, description="Timeline events per page.")] = 20,
    offset: Annotated[int, Query(ge=0, description="Timeline events to skip.")] = 0,
) -> Response:
    """Identifiers, traits with provenance, computed traits and a page of the timeline.
    An old profile id (from before a merge) answers with the profile it went into."""
    return _view(request, profile_id, limit, offset)


@router.get("", summary="Find a customer by an identifier", responses=_ERRORS)
def find_profile(
    request: Request,
    user_id: str | None = None,
    anonymous_id: str | None = None,
    email: str | None = None,
    phone: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    """Give exactly one of ``user_id``, ``anonymous_id``, ``email`` or ``phone``."""
    given = {k: v for k, v in (("user_id", user_id), ("anonymous_id", anonymous_id), ("email", email), ("phone", phone)) if v}
    if len(given) != 1:
        raise InvalidPayload(f"give exactly one of {', '.join(_LOOKUPS)} as a query parameter", field="query")
    ((kind, value),) = given.items()
    return _view(request, f"{kind}:{value}", limit, offset)


@router.delete(
    "/{profile_id}",
    summary="Erase a person on request (admin key)",
    responses={**_ERRORS, 401: {"model": ErrorResponse, "description": "Missing key, or a key without the admin scope."}},
)
def erase_profile(profile_id: str, request: Request) -> Response:
    """Removes the person's events, identifiers, traits and derived rows; keeps salted
    hashes so later events for them are dropped; answers with the receipt."""
    services = request.app.state.services
    services.keys.authenticate(basic_auth_user(request), scope="admin")
    receipt = services.workspace.profiles.erase(profile_id)
    return json_response(receipt.as_json())
