"""The `patron` command."""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from typing import Annotated

import typer

from patron.cli import demo, events, export, identity, imports, keys, profiles, quality, segments
from patron.cli.options import StoreOption
from patron.cli.output import console, print_error

app = typer.Typer(
    name="patron",
    help="Patron: collect customer events, build profiles, segment, predict, reward, act.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
class Backend(StrEnum):
    duckdb = "duckdb"
    spark = "spark"


@app.callback()
def options(
    backend: Annotated[
        Backend | None,
        typer.Option(
            "--backend",
            help="Engine: duckdb (the embedded store, default) or spark (a lake folder as --store; "
            "pip install 'patron\\[spark]'). Or PATRON_BACKEND.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Patron: collect customer events, build profiles, segment, predict, reward, act."""
    if backend is not None:  # every command reads its settings from the environment
        os.environ["PATRON_BACKEND"] = backend.value


app.add_typer(keys.app, name="keys")
app.add_typer(events.app, name="events")
app.add_typer(imports.app, name="import")
app.add_typer(identity.app, name="identity")
app.add_typer(profiles.app, name="profiles")
app.add_typer(segments.app, name="segments")
app.command("rfm")(segments.rfm)
app.add_typer(quality.app, name="quality")
app.add_typer(export.app, name="export")
app.command("demo")(demo.demo)


@app.command("serve")
def serve(
    host: Annotated[str | None, typer.Option("--host", help="Interface to bind (default 127.0.0.1, or PATRON_HOST).")] = None,
    port: Annotated[int | None, typer.Option("--port", min=0, max=65535, help="Port (default 8000, or PATRON_PORT).")] = None,
    store: StoreOption = None,
) -> None:
    """Serve the tracking API (Segment-compatible) and the docs at /docs."""
    import uvicorn

    from patron.api import create_app
    from patron.config import Settings
    from patron.workspace import Workspace

    settings = Settings().with_store(store)
    if settings.backend != "duckdb":
        from patron.store.exceptions import NotOnThisStore

        raise NotOnThisStore(
            "the collection service runs on the embedded store (PATRON_BACKEND=duckdb); its events reach "
            "the Spark lake with `patron export events --to LAKE --append`"
        )
    settings = settings.model_copy(
        update={k: v for k, v in (("host", host), ("port", port)) if v is not None}
    )
    workspace = Workspace(settings)
    _ = workspace.store  # open now: a locked store or one that cannot be created fails before binding
    config = uvicorn.Config(
        create_app(settings, workspace),
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=10,
    )
    server = uvicorn.Server(config)
    console.print(
        f"Patron is listening on [bold]http://{settings.host}:{settings.port}[/bold] "
        f"(store {settings.store}); API docs at http://{settings.host}:{settings.port}/docs. Ctrl+C stops.",
        highlight=False,
    )
    try:
        server.run()
    finally:
        workspace.close()
    if not server.started:
        raise SystemExit(1)


def main() -> None:
    """Entry point: every expected error is one line on stderr and a non-zero exit."""
    from patron.exceptions import PatronError

    try:
        app()
    except PatronError as error:
        print_error(str(error))
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as error:  # never a traceback for a user, unless asked for
        if os.environ.get("PATRON_DEBUG"):
            raise
        print_error(f"unexpected {type(error).__name__}: {error} (PATRON_DEBUG=1 shows the traceback)")
        sys.exit(1)
