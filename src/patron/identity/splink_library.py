"""The one place that imports Splink, an optional dependency (``patron[match]``).

Splink pulls in pandas and a few hundred modules; importing it only when a match is
asked for keeps ``import patron`` and every command that does not match fast.
"""

from __future__ import annotations

from types import ModuleType

from patron.identity.exceptions import MatchingUnavailable


def load_splink() -> ModuleType:
    """The ``splink`` package, imported on first use.

    Raises:
        MatchingUnavailable: Splink is not installed (or fails to import); the message
            gives the ``pip install "patron[match]"`` line.
    """
    try:
        import splink
    except ImportError as error:
        raise MatchingUnavailable(str(error)) from None
    return splink
