"""Normalising raw values into identifiers, and finding them in messages."""

from __future__ import annotations

import pytest

from patron.exceptions import ConfigError
from patron.identity.identifiers import (
    ANONYMOUS_ID,
    EMAIL,
    PHONE,
    USER_ID,
    Identifier,
    IdentifierRules,
    RefusedIdentifier,
)

rules = IdentifierRules(default_region="US")


@pytest.mark.parametrize(
    ("kind", "raw", "expected"),
    [
        (EMAIL, " Ann@Shop.COM ", "ann@shop.com"),
        (EMAIL, "a.n.n+news@gmail.com", "a.n.n+news@gmail.com"),  # provider rules are off by default
        (PHONE, "(415) 555-2671", "+14155552671"),
        (PHONE, "+44 20 7946 0958", "+442079460958"),
        (USER_ID, " User-42 ", "User-42"),  # ids keep their case
        (USER_ID, 42, "42"),
        (ANONYMOUS_ID, "3f2c-aa", "3f2c-aa"),
        ("external:hubspot_id", "007", "007"),
    ],
)
def test_values_normalise(kind: str, raw: object, expected: str) -> None:
    assert rules.normalise(kind, raw) == Identifier(kind, expected)


def test_gmail_provider_rules_when_asked() -> None:
    gmail = IdentifierRules(email_provider_rules=True)
    assert gmail.normalise(EMAIL, "A.n.n+shop@GoogleMail.com") == Identifier(EMAIL, "ann@gmail.com")
    assert gmail.normalise(EMAIL, "a.n.n@shop.com") == Identifier(EMAIL, "a.n.n@shop.com")  # other providers untouched


def test_phone_region_decides_numbers_without_country_code() -> None:
    assert IdentifierRules(default_region="AU").normalise(PHONE, "02 9876 5432") == Identifier(PHONE, "+61298765432")
    assert isinstance(rules.normalise(PHONE, "02 9876 5432"), RefusedIdentifier)


@pytest.mark.parametrize(
    ("kind", "raw", "reason"),
    [
        (EMAIL, "not-an-email", "not an email"),
        (EMAIL, "two@@at.com", "not an email"),
        (PHONE, "12345", "not a valid phone"),
        (PHONE, "call me", "not a valid phone"),
        (USER_ID, "null", "blocked"),
        (USER_ID, "Undefined", "blocked"),
        (USER_ID, 0, "blocked"),
        (ANONYMOUS_ID, "   ", "blocked"),
        (EMAIL, "test@test.com", "blocked"),
        (EMAIL, "noreply@shop.com", "blocked"),
        (USER_ID, True, "not a string"),
        (USER_ID, {"id": 1}, "not a string"),
        ("twitter", "@ann", "unknown identifier type"),
    ],
)
def test_unusable_values_are_refused_with_a_reason(kind: str, raw: object, reason: str) -> None:
    refused = rules.normalise(kind, raw)
    assert isinstance(refused, RefusedIdentifier) and reason in refused.reason


def test_blocked_values_are_configurable() -> None:
    strict = IdentifierRules(blocked_values=(r".*@example\.com",))
    assert isinstance(strict.normalise(EMAIL, "ann@example.com"), RefusedIdentifier)
    assert strict.normalise(USER_ID, "null") == Identifier(USER_ID, "null")
    with pytest.raises(ConfigError, match="regular expression"):
        IdentifierRules(blocked_values=("(",))


def test_identifiers_in_a_message() -> None:
    message = {
        "type": "identify",
        "userId": "u-1",
        "anonymousId": "anon-9",
        "traits": {"email": "Ann@Shop.com", "phone": "415 555 2671", "name": "Ann"},
        "context": {
            "traits": {"email": "old@shop.com"},
            "externalIds": [
                {"id": "crm-7", "type": "hubspot_id", "collection": "users"},
                {"id": "", "type": "empty"},
                {"type": "no-id"},
            ],
        },
    }
    found = list(rules.in_message(message))
    assert found == [
        Identifier(USER_ID, "u-1"),
        Identifier(ANONYMOUS_ID, "anon-9"),
        Identifier(EMAIL, "ann@shop.com"),  # the identify's own traits win over context.traits
        Identifier(PHONE, "+14155552671"),
        Identifier("external:hubspot_id", "crm-7"),
    ]


def test_group_traits_are_not_the_persons() -> None:
    message = {"type": "group", "userId": "u-1", "groupId": "acme", "traits": {"email": "billing@acme.com"}}
    assert list(rules.in_message(message)) == [Identifier(USER_ID, "u-1")]


def test_track_context_traits_count_and_refusals_are_reported() -> None:
    message = {"type": "track", "anonymousId": "undefined", "context": {"traits": {"email": "x@y.io", "phone": "nope"}}}
    found = list(rules.in_message(message))
    assert isinstance(found[0], RefusedIdentifier) and found[0].type == ANONYMOUS_ID
    assert found[1] == Identifier(EMAIL, "x@y.io")
    assert isinstance(found[2], RefusedIdentifier) and found[2].type == PHONE


def test_workspace_builds_rules_from_settings(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from patron.config import Settings
    from patron.workspace import Workspace

    settings = Settings(
        store=tmp_path / "s.duckdb",
        identity_default_region="GB",
        identity_email_provider_rules=True,
        identity_blocked_values=["vip"],
    )
    ws = Workspace(settings)
    assert ws.identifier_rules.normalise(PHONE, "020 7946 0958") == Identifier(PHONE, "+442079460958")
    assert ws.identifier_rules.normalise(EMAIL, "a.b@gmail.com") == Identifier(EMAIL, "ab@gmail.com")
    assert isinstance(ws.identifier_rules.normalise(USER_ID, "VIP"), RefusedIdentifier)
    assert ws.identifier_rules.normalise(USER_ID, "null") == Identifier(USER_ID, "null")
