"""Errors of identity resolution."""

from __future__ import annotations

from collections.abc import Sequence

from patron.exceptions import PatronError


class IdentityError(PatronError):
    """Identity resolution could not do what was asked."""

    http_status = 500
    code = "identity_error"


class MatchingUnavailable(IdentityError, ImportError):
    """Probabilistic matching needs Splink, an optional dependency that is not installed."""

    code = "matching_unavailable"

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(
            f'probabilistic matching needs Splink, which cannot be imported ({detail}); '
            'install it with: pip install "patron[match]"'
        )


class InvalidMatchInput(IdentityError, ValueError):
    """The records given to the matcher cannot be matched as they are."""

    http_status = 400
    code = "invalid_match_input"

    def __init__(self, problem: str, columns: Sequence[str] = ()) -> None:
        self.problem = problem
        self.columns = list(columns)
        shown = f" (columns: {', '.join(self.columns)})" if self.columns else ""
        super().__init__(f"cannot match these records: {problem}{shown}")


class UnknownProfile(IdentityError, LookupError):
    """No profile has this id, and no identifier has this value."""

    http_status = 404
    code = "unknown_profile"

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(
            f"no profile or identifier {key!r}; `patron identity clusters` lists them "
            "(run `patron identity resolve` after new events)"
        )


class NotResolved(IdentityError):
    """The identity graph has not been built yet."""

    http_status = 409
    code = "identity_not_resolved"

    def __init__(self) -> None:
        super().__init__("the identity graph is not built yet; run `patron identity resolve`")
