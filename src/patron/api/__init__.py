"""HTTP shell: the FastAPI app factory and its routers. No business logic lives here."""

from patron.api.app import create_app

__all__ = ["create_app"]
