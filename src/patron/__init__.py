"""Patron: an open-source customer data and retention platform.

The public names load on first use, so ``import patron`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["PatronError", "Settings", "Workspace", "__version__"]

if TYPE_CHECKING:
    from patron.config import Settings
    from patron.exceptions import PatronError
    from patron.workspace import Workspace

_LAZY = {
    "PatronError": "patron.exceptions",
    "Settings": "patron.config",
    "Workspace": "patron.workspace",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'patron' has no attribute {name!r}")
