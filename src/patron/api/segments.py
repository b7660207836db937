"""Segments over HTTP: define, preview, refresh and read groups of customers, who was in
each when, and the RFM summary (``/v1/segments``, ``/v1/rfm``).

Reading takes a key with the ``read`` scope; defining, changing, deleting and refreshing
take an ``admin`` key. The key is checked before the body, so a caller without one learns
nothing about what the body should hold. A query that cannot be used answers 400 with
``field: "where"`` and the ``column``, ``line`` and ``token`` to underline.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from patron.api.body import basic_auth_user
from patron.api.errors import error_body, json_response
from patron.api.schemas import (
    CreateSegmentRequest,
    ErrorResponse,
    PreviewRequest,
    RefreshRequest,
    SegmentQueryErrorResponse,
    UpdateSegmentRequest,
)
from patron.collect.exceptions import InvalidPayload
from patron.segments.dates import parse_instant
from patron.segments.exceptions import SegmentQueryError
from patron.segments.service import Segments


def _reader(request: Request) -> None:
    request.app.state.services.keys.authenticate(basic_auth_user(request), scope="read")


def _admin(request: Request) -> None:
    request.app.state.services.keys.authenticate(basic_auth_user(request), scope="admin")


router = APIRouter(prefix="/v1", tags=["segments"])
_READ = [Depends(_reader)]
_ADMIN = [Depends(_admin)]

#: Paths under /v1/segments that are not segments: a segment named ``attributes`` could not
#: be shown (``GET``); the others are refused too, to keep the paths unambiguous.
_RESERVED = frozenset({"attributes", "preview", "refresh"})


def _doc(status: int, text: str, model: type[ErrorResponse] = ErrorResponse) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": model, "description": text}}


_READ_KEY = _doc(401, "Missing key, or a key without the read scope.")
_ADMIN_KEY = _doc(401, "Missing key, or a key without the admin scope.")
_UNKNOWN = _doc(404, "No segment with this name.")
_NOT_BUILT = _doc(409, "Profiles are not built yet (`patron profiles build`).")
_BAD_BODY = _doc(400, "A body or parameter that cannot be used; `field` names it.")
_BAD_QUERY = _doc(
    400,
    "A bad body, or a query that cannot be used: `field` is `where`, and `column`, `line` and `token` "
    "say what to underline.",
    SegmentQueryErrorResponse,
)


def _segments(request: Request) -> Segments:
    segments: Segments = request.app.state.services.workspace.segments
    return segments


def _json(body: Sequence[Any]) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


def _query_error(error: SegmentQueryError) -> Response:
    body = error_body(error.code, str(error), "where", column=error.column, line=error.line, token=error.token,
                      reason=error.reason)  # fmt: skip
    return json_response(body, error.http_status)


def _instant(text: str | None, field: str) -> datetime | date | None:
    if text is None:
        return None
    try:
        return parse_instant(text)
    except ValueError as error:
        raise InvalidPayload(str(error), field=field) from None


# -- collection routes, before /segments/{name} so no segment name captures them ----------


@router.get("/segments", summary="All segments with their sizes", responses=_READ_KEY, dependencies=_READ)
def list_segments(request: Request) -> Response:
    """Every segment's definition (kind, query, description, what it uses) and size, by name."""
    return _json([segment.as_json() for segment in _segments(request).all()])


@router.post(
    "/segments",
    summary="Define a segment (admin key)",
    status_code=201,
    responses={**_BAD_QUERY, **_ADMIN_KEY, **_doc(409, "The name is taken, or profiles are not built yet.")},
    dependencies=_ADMIN,
)
def create_segment(body: CreateSegmentRequest, request: Request) -> Response:
    """Dynamic with ``where`` (evaluated now and on every refresh), static frozen from a
    query with ``where`` and ``static``, or a static list with ``ids`` (profile ids, emails
    or user ids). Answers with the segment as ``GET /v1/segments/{name}`` shows it, its
    warnings (too small, nearly everyone, much the same as another segment) and, for
    ``ids``, how many matched no profile."""
    if (body.where is None) == (body.ids is None):
        raise InvalidPayload("give where (a query) or ids (a static list), one of the two", field="where")
    if body.name in _RESERVED:
        raise InvalidPayload(f"{body.name!r} is a path of this API; choose another name", field="name")
    segments = _segments(request)
    try:
        if body.ids is not None:
            shown = _create_from_ids(segments, body)
        else:
            shown = segments.create(body.name, body.where, static=body.static, description=body.description,
                                    as_of=body.as_of)  # fmt: skip
    except SegmentQueryError as error:
        return _query_error(error)
    return json_response(shown, 201, headers={"Location": f"/v1/segments/{body.name}"})


def _create_from_ids(segments: Segments, body: CreateSegmentRequest) -> dict[str, Any]:
    # The service resolves ids (emails normalised, old profile ids followed) from a CSV
    # file, as `patron segments create --ids` gives it; one column headed ``id``.
    with tempfile.TemporaryDirectory(prefix="patron-segment-") as folder:
        path = Path(folder) / "ids.csv"
        with path.open("w", newline="", encoding="utf-8") as file:
            writer = csv.writer(file, quoting=csv.QUOTE_ALL)
            writer.writerow(["id"])
            writer.writerows([value] for value in body.ids or ())
        return segments.create(body.name, static=True, description=body.description, ids=path)


@router.post(
    "/segments/preview",
    summary="How many profiles a query matches",
    responses={**_BAD_QUERY, **_READ_KEY, **_NOT_BUILT},
    dependencies=_READ,
)
def preview_segment(body: PreviewRequest, request: Request) -> Response:
    """``count`` of ``profiles`` (and the ``share``), a ``sample`` of the matching profiles
    (profile id and email), ``warnings`` and whether the answer moves with the clock
    (``time_dependent``). Nothing is saved."""
    try:
        result = _segments(request).preview(body.where, as_of=body.as_of, sample=body.sample)
    except SegmentQueryError as error:
        return _query_error(error)
    return json_response(result.as_json())


@router.post(
    "/segments/refresh",
    summary="Build profiles and bring segments up to date (admin key)",
    responses={**_BAD_BODY, **_ADMIN_KEY, **_UNKNOWN, **_NOT_BUILT},
    dependencies=_ADMIN,
)
def refresh_segments(request: Request, body: RefreshRequest | None = None) -> Response:
    """Builds profiles from the events stored so far, then evaluates the dynamic segments
    (all, or ``names`` and those they use): over the profiles changed since the last
    refresh, or over every profile with ``full``. Answers with the mode and, per
    segment, how many entered and exited and the new size."""
    body = body or RefreshRequest()
    report = _segments(request).refresh(body.names or None, full=body.full, as_of=body.as_of)
    return json_response(report.as_json())


@router.get(
    "/segments/attributes",
    summary="What a query can name",
    responses={**_READ_KEY, **_NOT_BUILT},
    dependencies=_READ,
)
def list_attributes(request: Request) -> Response:
    """Every trait, computed trait and RFM score a query can name: ``name``, ``kind``
    (number, string, boolean, date, timestamp, list, object), ``source`` and ``description``."""
    return _json([attribute.as_json() for attribute in _segments(request).catalogue().all()])


# -- one segment ------------------------------------------------------------------------


@router.get(
    "/segments/{name}", summary="One segment", responses={**_READ_KEY, **_UNKNOWN}, dependencies=_READ
)
def show_segment(name: str, request: Request) -> Response:
    """The definition and size, the share of all profiles, entries and exits so far, the
    segments that use it and what to watch out for."""
    return json_response(_segments(request).show(name))


@router.patch(
    "/segments/{name}",
    summary="Change a segment's query or description (admin key)",
    responses={**_BAD_QUERY, **_ADMIN_KEY, **_UNKNOWN},
    dependencies=_ADMIN,
)
def update_segment(name: str, body: UpdateSegmentRequest, request: Request) -> Response:
    """A new ``where`` is evaluated at once over every profile (dynamic segments only; the
    members who leave or join are in the history); a new ``description`` is just saved."""
    if body.where is None and body.description is None:
        raise InvalidPayload("give where, description or both", field="where")
    try:
        shown = _segments(request).update(name, query=body.where, description=body.description)
    except SegmentQueryError as error:
        return _query_error(error)
    return json_response(shown)


@router.delete(
    "/segments/{name}",
    summary="Delete a segment (admin key)",
    responses={**_doc(400, "Another segment uses this one (in_segment)."), **_ADMIN_KEY, **_UNKNOWN},
    dependencies=_ADMIN,
)
def delete_segment(name: str, request: Request) -> Response:
    """Its members exit (the history keeps them); refused while another segment uses it.
    Answers ``{"deleted": name, "members": how many exited}``."""
    return json_response({"deleted": name, "members": _segments(request).delete(name)})


@router.get(
    "/segments/{name}/members",
    summary="Who is in a segment, now or at a past moment",
    responses={
        200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with `format=csv`."},
        **_BAD_BODY,
        **_READ_KEY,
        **_UNKNOWN,
    },
    dependencies=_READ,
)
def segment_members(
    name: str,
    request: Request,
    at: Annotated[
        str | None,
        Query(description="Who was in it then: a date (the end of that day, UTC) or an ISO time with Z or an offset."),
    ] = None,
    output_format: Annotated[Literal["json", "csv"], Query(alias="format", description="json or csv.")] = "json",
    limit: Annotated[int | None, Query(ge=1, description="At most this many members, by profile id.")] = None,
) -> Response:
    """Each member's ``profile_id``, ``email`` and ``entered_at`` (when they last entered),
    ordered by profile id. JSON: ``{"segment", "at", "count", "members"}``, where ``count``
    is the members in this answer; CSV: a header line ``profile_id,email,entered_at``."""
    instant = _instant(at, "at")
    rows = _segments(request).members(name, instant, limit=limit).to_pylist()
    if output_format == "json":
        shown_at = instant.isoformat() if instant is not None else None
        return json_response({"segment": name, "at": shown_at, "count": len(rows), "members": rows})
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["profile_id", "email", "entered_at"])
    for row in rows:
        entered = row["entered_at"].isoformat() if row["entered_at"] else ""
        writer.writerow([row["profile_id"], row["email"] or "", entered])
    disposition = f'attachment; filename="{name}-members.csv"'
    return Response(buffer.getvalue(), media_type="text/csv", headers={"Content-Disposition": disposition})


@router.get(
    "/segments/{a}/overlap/{b}",
    summary="How many profiles two segments share",
    responses={**_READ_KEY, **_UNKNOWN},
    dependencies=_READ,
)
def segment_overlap(a: str, b: str, request: Request) -> Response:
    """Sizes, ``both``, ``only_a``, ``only_b``, the Jaccard index and a warning when they
    are almost the same people."""
    return json_response(_segments(request).overlap(a, b))


# -- RFM --------------------------------------------------------------------------------


@router.get(
    "/rfm", summary="RFM groups and score thresholds", responses={**_BAD_BODY, **_READ_KEY, **_NOT_BUILT},
    dependencies=_READ,
)  # fmt: skip
def rfm_summary(
    request: Request,
    as_of: Annotated[str | None, Query(description="Measure recency to this date or ISO time instead of now.")] = None,
) -> Response:
    """Purchasers and prospects; per group its customers, revenue and their shares; the
    values that earn each recency, frequency and monetary score."""
    return json_response(_segments(request).rfm(as_of=_instant(as_of, "as_of")))
