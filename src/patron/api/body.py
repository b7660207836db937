"""Reading a request body: size limits, gzip, JSON, and the write key."""

from __future__ import annotations

import base64
import binascii
import zlib
from typing import Any

import orjson
from starlette.requests import Request

from patron.collect.exceptions import InvalidPayload


async def read_json(request: Request, limit: int) -> Any:
    """The decoded JSON body, refusing bodies over ``limit`` bytes (after decompression)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        if chunk:
            chunks.append(chunk)
    encoding = request.headers.get("content-encoding", "").strip().lower()
    # One chunk is the usual case: no copy before parsing.
    data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    if encoding == "gzip":
        data = _gunzip(data, limit)
    elif encoding not in ("", "identity"):
        raise InvalidPayload(
            f"Content-Encoding {encoding!r} is not supported; send gzip or no encoding",
            code="unsupported_encoding",
            status=415,
        )
    if not data:
        raise InvalidPayload("the body is empty; send a JSON object", code="invalid_json")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise InvalidPayload(f"the body is not valid JSON: {error}", code="invalid_json") from None


def _gunzip(data: bytes, limit: int) -> bytes:
    # Decompress at most limit+1 bytes so a small "gzip bomb" cannot exhaust memory.
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, limit + 1)
        if len(out) > limit:
            raise _too_large(limit)
        if not inflater.eof:
            raise InvalidPayload(
                "the gzip body is truncated", code="invalid_gzip"
            )
    except zlib.error as error:
        raise InvalidPayload(
            f"Content-Encoding is gzip but the body is not valid gzip ({error})", code="invalid_gzip"
        ) from None
    return out


def _too_large(limit: int) -> InvalidPayload:
    return InvalidPayload(
        f"the request body is over the limit of {limit} bytes (after decompression); "
        "send smaller batches",
        code="payload_too_large",
        status=413,
    )


def basic_auth_user(request: Request) -> str | None:
    """The user name of an HTTP Basic ``Authorization`` header (the write key), if any."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip() or None
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, _, _password = decoded.partition(":")
    return user or None
