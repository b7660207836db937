"""The curated public API, and that importing it stays light."""

from __future__ import annotations

import subprocess
import sys

import patron


def test_all_lists_the_public_names() -> None:
    assert patron.__all__ == ["PatronError", "Settings", "Workspace", "__version__"]
    for name in patron.__all__:
        assert getattr(patron, name) is not None


def test_import_patron_does_not_load_heavy_libraries() -> None:
    code = "import sys, patron; print(','.join(m for m in ('ibis','duckdb','fastapi','pyarrow') if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == ""


def test_every_error_derives_from_the_root() -> None:
    from patron.collect import exceptions as collect_errors
    from patron.store import exceptions as store_errors

    for module in (collect_errors, store_errors):
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Exception) and value.__module__ == module.__name__:
                assert issubclass(value, patron.PatronError), value
