"""`patron demo` (placeholder, filled by the demo-data work)."""

from __future__ import annotations

from patron.cli.options import StoreOption


def demo(store: StoreOption = None) -> None:
    """Load the bundled demo data (CDNOW purchases plus labelled synthetic data) once."""
    raise NotImplementedError
