"""Errors of the profiles layer."""

from __future__ import annotations

from patron.exceptions import PatronError


class ProfilesError(PatronError):
    """Profiles could not do what was asked."""

    http_status = 400
    code = "profiles_error"


class ProfilesNotBuilt(ProfilesError):
    """Profiles were asked for before they were built."""

    http_status = 409
    code = "profiles_not_built"

    def __init__(self) -> None:
        super().__init__("profiles are not built yet; run `patron profiles build`")
