"""Every error answer is JSON with ``code`` and ``message`` (and ``field`` where one is to blame).

The RudderStack SDK retries a 400 forever when its body lacks ``code`` or ``message``, so
no path may answer with Starlette's default ``{"detail": ...}``.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from patron.collect.exceptions import AuthenticationError, InvalidMessage, InvalidPayload
from patron.exceptions import PatronError
from patron.store.exceptions import StoreError


def json_response(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


def error_body(code: str, message: str, field: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"success": False, "code": code, "message": message}
    if field is not None:
        body["field"] = field
    body.update(extra)
    return body


async def _patron_error(_: Request, error: Exception) -> Response:
    assert isinstance(error, PatronError)
    field = getattr(error, "field", None)
    headers: dict[str, str] = {}
    if isinstance(error, AuthenticationError):
        headers["WWW-Authenticate"] = 'Basic realm="patron"'
    if isinstance(error, StoreError) or error.http_status == 503:
        headers["Retry-After"] = "5"
    message = str(error)
    if isinstance(error, InvalidMessage):
        message = f"{error.field}: {error.reason}" if error.field else error.reason
    elif isinstance(error, InvalidPayload):
        message = error.reason
    return json_response(error_body(error.code, message, field), error.http_status, headers)


async def _http_error(_: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
    return json_response(error_body(code, str(error.detail)), error.status_code)


async def _validation_error(_: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    first = error.errors()[0] if error.errors() else {"loc": (), "msg": "invalid request"}
    field = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path"))
    return json_response(error_body("invalid_request", str(first.get("msg")), field or None), 400)


async def _unexpected(_: Request, error: Exception) -> Response:
    return json_response(
        error_body("internal_error", f"unexpected server error ({type(error).__name__}); nothing was acknowledged"),
        500,
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(PatronError, _patron_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
