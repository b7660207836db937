"""The FastAPI application factory."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from pydantic.json_schema import models_json_schema
from starlette.responses import Response

import patron
from patron.api import browser, collect, profiles, segments
from patron.api.errors import install_error_handlers, json_response
from patron.api.schemas import DOCUMENTED_MODELS, HealthResponse
from patron.collect.keys import KeyRing
from patron.collect.service import Collector
from patron.collect.writer import DurableWriter
from patron.config import Settings
from patron.workspace import Workspace


@dataclass
class Services:
    """What request handlers reach through ``request.app.state.services``."""

    settings: Settings
    workspace: Workspace
    keys: KeyRing
    collector: Collector
    writer: DurableWriter


def create_app(settings: Settings | None = None, workspace: Workspace | None = None) -> FastAPI:
    """Build the HTTP application; the store opens and the writer starts with the app."""
    settings = settings or (workspace.settings if workspace else Settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ws = workspace or Workspace(settings)
        writer = DurableWriter(ws.collect_store, max_group_rows=settings.writer_max_group_rows)
        writer.start()
        app.state.services = Services(settings, ws, ws.keys, ws.collector, writer)
        # Everything imported so far lives as long as the server. Without this, every
        # full collection walks those ~160,000 objects (about 80 ms here), stalling all
        # requests in flight; frozen, it takes a few ms (docs/benchmarks.md).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            writer.stop()
            with suppress(patron.PatronError):
                ws.store.checkpoint()  # if it fails, the WAL still holds every committed row
            # Close here, not after server.run(): on SIGTERM uvicorn re-raises the signal
            # once the app has shut down, so code after run() never executes.
            ws.close()

    app = FastAPI(
        title="Patron",
        version=patron.__version__,
        summary="Customer data and retention platform. Segment-compatible tracking API.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.include_router(collect.router)
    app.include_router(browser.router)
    app.include_router(profiles.router)
    app.include_router(segments.router)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=["*"],
        max_age=86400,
    )

    @app.get("/", tags=["ops"], summary="Where to look")
    async def root() -> Response:
        return json_response(
            {
                "name": "Patron",
                "version": patron.__version__,
                "docs": "/docs",
                "openapi": "/openapi.json",
                "health": "/health",
                "collect": [f"/v1/{call}" for call in ("identify", "track", "page", "screen", "group", "alias", "batch")],
            }
        )

    @app.get("/health", tags=["ops"], response_model=HealthResponse, summary="Liveness and writer state")
    async def health(request: Request) -> Response:
        services: Services = request.app.state.services
        stats = services.writer.stats
        ok = services.writer.alive and stats.last_error is None
        return json_response(
            {
                "status": "ok" if ok else "degraded",
                "store": str(settings.store),
                "writer_alive": services.writer.alive,
                "groups_committed": stats.groups,
                "rows_committed": stats.rows,
                "last_error": stats.last_error,
            },
            200 if ok else 503,
        )

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
        _, defs = models_json_schema(
            [(m, "validation") for m in DOCUMENTED_MODELS], ref_template="#/components/schemas/{model}"
        )
        schema.setdefault("components", {}).setdefault("schemas", {}).update(defs.get("$defs", {}))
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
