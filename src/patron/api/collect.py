"""The Segment-compatible tracking endpoints: /v1/identify, track, page, screen, group, alias, batch."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from patron.api.body import basic_auth_user, read_json
from patron.api.errors import json_response
from patron.api.schemas import (
    AcceptedResponse,
    BatchResponse,
    ErrorResponse,
)
from patron.collect.service import raise_if_rejected
from patron.collect.timestamps import utc_now

router = APIRouter(prefix="/v1", tags=["collect"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": text}
    for status, text in (
        (400, "Malformed body or a message that breaks the spec; `field` names the culprit."),
        (401, "Missing, unknown or revoked write key."),
        (413, "Body over 500 KB after decompression."),
        (415, "Unsupported Content-Encoding."),
        (503, "The store cannot be written; nothing was acknowledged. Retry after the Retry-After delay."),
    )
}


def _body_doc(model: str) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model}"}}},
        }
    }


async def _collect(request: Request, kind: str) -> Response:
    received_at = utc_now()
    services = request.app.state.services
    payload = await read_json(request, services.settings.max_batch_bytes)
    body_key = payload.pop("writeKey", None) if isinstance(payload, dict) else None
    key = basic_auth_user(request) or (body_key if isinstance(body_key, str) else None)
    record = services.keys.authenticate(key, scope="write")
    collector = services.collector
    if kind == "batch":
        prepared = collector.batch(payload, source_id=record.source_id, received_at=received_at)
    else:
        prepared = collector.single(payload, kind, source_id=record.source_id, received_at=received_at)
    result = await asyncio.wrap_future(services.writer.submit(prepared.rows, prepared.failed_table()))
    answer: dict[str, Any] = {"success": True, "accepted": result.accepted, "duplicates": result.duplicates}
    if result.erased:
        answer["erased"] = result.erased
    if kind != "batch":
        raise_if_rejected(prepared)
        return json_response(answer)
    answer["rejected"] = [r.as_json() for r in prepared.rejections]
    return json_response(answer)


def _route(kind: str, model: str, summary: str) -> None:
    """``/v1/<kind>``, and the one-letter path Analytics.js 2.0 posts to (``/v1/t``, ``/v1/b``)."""

    async def endpoint(request: Request) -> Response:
        return await _collect(request, kind)

    endpoint.__name__ = f"collect_{kind}"
    response_model = BatchResponse if kind == "batch" else AcceptedResponse
    for path, text in ((f"/{kind}", summary), (f"/{kind[0]}", f"{summary} (the path Analytics.js 2.0 uses)")):
        router.add_api_route(
            path,
            endpoint,
            methods=["POST"],
            summary=text,
            response_model=response_model,
            responses=_ERRORS,
            openapi_extra=_body_doc(model),
            operation_id=f"collect_{kind}" if path == f"/{kind}" else f"collect_{kind}_short",
        )


_route("identify", "IdentifyMessage", "Identify a person and record their traits")
_route("track", "TrackMessage", "Record an action the person took")
_route("page", "PageMessage", "Record a web page view")
_route("screen", "ScreenMessage", "Record an app screen view")
_route("group", "GroupMessage", "Associate the person with a group")
_route("alias", "AliasMessage", "Merge a previous id into a user id")
# Valid messages are stored; each rejected one is reported with its index and reason.
_route("batch", "BatchRequest", "Send many messages of any type in one request")
