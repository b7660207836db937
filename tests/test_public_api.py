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


def _patron_errors() -> list[type]:
    import importlib
    import pkgutil

    for module in pkgutil.walk_packages(patron.__path__, "patron."):
        if not module.name.startswith(("patron.cli", "patron.api")):
            importlib.import_module(module.name)

    def subclasses(cls: type) -> list[type]:
        return [cls, *(s for sub in cls.__subclasses__() for s in subclasses(sub))]

    return subclasses(patron.PatronError)


def test_the_exception_tree_in_the_docstring_is_complete() -> None:
    from patron import exceptions

    drawn = exceptions.__doc__ or ""
    missing = [cls.__name__ for cls in _patron_errors() if cls.__name__ not in drawn]
    assert missing == []


def test_exception_modules_raise_only_patron_errors() -> None:
    from patron.collect import exceptions as collect_errors
    from patron.collect.importers import exceptions as import_errors
    from patron.store import exceptions as store_errors

    for module in (collect_errors, store_errors, import_errors):
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Exception) and value.__module__ == module.__name__:
                assert issubclass(value, patron.PatronError), value
