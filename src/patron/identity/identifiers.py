"""Identifiers: what they are, and how raw values are normalised before matching.

Two messages belong to one person only if they share an identifier, so the same email
written twice must become the same value: ``" Ann@Shop.COM "`` and ``"ann@shop.com"``
are one identifier. Rules, by type:

``email``
    trimmed and lower-cased; must look like ``local@domain.tld``. With
    ``email_provider_rules`` on, addresses at gmail.com and googlemail.com also lose
    the dots and any ``+tag`` of their local part (Google ignores both), so
    ``A.n.n+shop@GoogleMail.com`` becomes ``ann@gmail.com``. Off by default: for other
    providers dots matter, and a business may want tagged addresses kept apart.
``phone``
    parsed with the ``phonenumbers`` library and written in E.164 (``+14155552671``);
    numbers without a country code are read in ``default_region``; numbers that
    library does not consider valid are refused.
``user_id``, ``anonymous_id``, ``external:<kind>``
    kept exactly as given (ids are case-sensitive), once surrounding spaces are
    trimmed; ``external:<kind>`` comes from ``context.externalIds`` (kind = its type).

Any value matching one of ``blocked_values`` (regular expressions matched against the
whole value, case-insensitively, after normalisation) is refused: placeholders such as
``null``, ``undefined`` or ``0`` would otherwise merge everyone who sent them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import phonenumbers

USER_ID = "user_id"
ANONYMOUS_ID = "anonymous_id"
EMAIL = "email"
PHONE = "phone"
EXTERNAL_PREFIX = "external:"

#: Placeholder values that clients send when they have no real value.
DEFAULT_BLOCKED_VALUES: tuple[str, ...] = (
    "",
    "null",
    "undefined",
    "none",
    "nil",
    "nan",
    "0",
    "-1",
    "n/a",
    "na",
    "unknown",
    "anonymous",
    "test",
    "test@test.com",
    r"no-?reply@.*",
    r"noemail@.*",
)

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})


class Identifier(NamedTuple):
    """A typed, normalised identifier: a node of the identity graph.

    A named tuple, not a dataclass: resolving hashes and compares identifiers millions
    of times, and a tuple does both in C (about three times faster here).
    """

    type: str
    value: str

    def __str__(self) -> str:
        return f"{self.type}:{self.value}"


@dataclass(frozen=True, slots=True)
class RefusedIdentifier:
    """A raw value that cannot serve as an identifier, and why (for the quality report)."""

    type: str
    raw: str
    reason: str


@dataclass(frozen=True)
class IdentifierRules:
    """How raw values become identifiers; built from settings.

    Args:
        default_region: ISO country code for phone numbers written without one.
        email_provider_rules: apply Gmail's rules (dots and +tags ignored).
        blocked_values: regular expressions for placeholder values to refuse.
    """

    default_region: str = "US"
    email_provider_rules: bool = False
    blocked_values: Sequence[str] = DEFAULT_BLOCKED_VALUES
    _blocked: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            pattern = re.compile("|".join(f"(?:{p})" for p in self.blocked_values), re.IGNORECASE)
        except re.error as error:
            from patron.exceptions import ConfigError

            raise ConfigError(f"a blocked identifier value is not a valid regular expression: {error}") from None
        object.__setattr__(self, "_blocked", pattern)

    def normalise(self, kind: str, raw: object) -> Identifier | RefusedIdentifier:
        """The identifier for a raw value of type ``kind``, or why it is refused."""
        if raw is None or isinstance(raw, bool) or not isinstance(raw, str | int):
            return RefusedIdentifier(kind, repr(raw), "not a string or an integer")
        text = str(raw).strip()
        if kind == EMAIL:
            value = self._email(text)
            if value is None:
                return RefusedIdentifier(kind, text, "not an email address")
        elif kind == PHONE:
            value = self._phone(text)
            if value is None:
                return RefusedIdentifier(kind, text, f"not a valid phone number (default region {self.default_region})")
        elif kind in (USER_ID, ANONYMOUS_ID) or kind.startswith(EXTERNAL_PREFIX):
            value = text
        else:
            return RefusedIdentifier(kind, text, f"unknown identifier type {kind!r}")
        if self._blocked.fullmatch(value):
            return RefusedIdentifier(kind, text, "a blocked placeholder value")
        return Identifier(kind, value)

    def _email(self, text: str) -> str | None:
        value = text.lower()
        if not _EMAIL.match(value):
            return None
        if self.email_provider_rules:
            local, _, domain = value.rpartition("@")
            if domain in _GMAIL_DOMAINS:
                local = local.split("+", 1)[0].replace(".", "")
                if not local:
                    return None
                value = f"{local}@gmail.com"
        return value

    def _phone(self, text: str) -> str | None:
        try:
            number = phonenumbers.parse(text, self.default_region)
        except phonenumbers.NumberParseException:
            return None
        if not phonenumbers.is_valid_number(number):
            return None
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

    def in_message(self, message: dict[str, Any]) -> Iterator[Identifier | RefusedIdentifier]:
        """Every identifier one message carries: the ids, traits and external ids.

        Identifiers that appear together in one message belong to one person; the
        identity graph links them. ``alias`` and ``group`` ids are the graph's business.
        """
        for key, kind in (("userId", USER_ID), ("anonymousId", ANONYMOUS_ID)):
            if message.get(key) not in (None, ""):
                yield self.normalise(kind, message[key])
        traits: dict[str, Any] = {}
        context = message.get("context")
        if isinstance(context, dict) and isinstance(context.get("traits"), dict):
            traits.update(context["traits"])
        if message.get("type") == "identify" and isinstance(message.get("traits"), dict):
            traits.update(message["traits"])
        for key, kind in (("email", EMAIL), ("phone", PHONE)):
            if traits.get(key) not in (None, ""):
                yield self.normalise(kind, traits[key])
        external = context.get("externalIds") if isinstance(context, dict) else None
        if isinstance(external, list):
            for entry in external:
                if isinstance(entry, dict) and entry.get("id") not in (None, "") and entry.get("type"):
                    yield self.normalise(f"{EXTERNAL_PREFIX}{entry['type']}", entry["id"])
