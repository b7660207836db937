"""What browser SDKs need from a self-hosted endpoint.

Segment's Analytics.js 2.0 (``@segment/analytics-next``) first fetches its source
settings from ``<cdnURL>/v1/projects/<writeKey>/settings``. Serving that document here
means a website only sets ``cdnURL`` to Patron's address; the SDK then sends its events
to the ``apiHost`` this document names, which is this same server.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from patron.api.errors import error_body, json_response
from patron.collect.exceptions import AuthenticationError

router = APIRouter(tags=["browser SDK"])


@router.get(
    "/v1/projects/{write_key}/settings",
    summary="Source settings for Analytics.js 2.0, pointing it at this server",
)
async def project_settings(write_key: str, request: Request) -> Response:
    services = request.app.state.services
    try:
        services.keys.authenticate(write_key, scope="write")
    except AuthenticationError as error:
        return json_response(error_body("unknown_write_key", str(error), "writeKey"), 404)
    public = services.settings.public_url or str(request.base_url)
    scheme, _, host = public.rstrip("/").partition("://")
    return json_response(
        {
            "integrations": {
                "Segment.io": {"apiKey": write_key, "apiHost": f"{host}/v1", "protocol": scheme or "http"}
            },
            "plan": {"track": {"__default": {"enabled": True}}, "identify": {"__default": {"enabled": True}}},
            "remotePlugins": [],
        }
    )
