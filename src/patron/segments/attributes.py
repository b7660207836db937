"""What a segment query can name: every profile trait, computed trait and RFM score, and
inside ``where`` every field of an event, each with its kind.

Kinds decide which operators apply and what a value must look like: ``number``,
``string``, ``boolean``, ``date`` (compared by day), ``timestamp`` (an instant; compared
with a date, by its UTC day), ``list`` (of strings: ``CONTAINS``, ``IN``) and ``object``
(reached with dots: ``address.city``).

Computed traits and RFM scores have the column types the build gives them. Traits are
JSON values, so a trait's kind is read from the stored values: the kind most of its
values have (a string trait whose values are mostly ISO dates, such as a birthday, is a
``date``). A name that is both a computed trait and a trait means the computed one;
``traits.NAME`` always means the trait.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

KINDS = ("number", "string", "boolean", "date", "timestamp", "list", "object")

#: Traits whose comparisons with relative dates are by month and day (the next
#: birthday, not the birth date): ``birthday BETWEEN today AND +7d``.
ANNIVERSARY_NAMES = frozenset({"birthday", "birthdate", "date_of_birth", "dob", "anniversary", "wedding_anniversary"})

#: Fields of an event a ``where`` can name (the event facts, facts.py), with their kinds.
EVENT_FIELDS: dict[str, tuple[str, str]] = {
    "event": ("string", "The track call's event name"),
    "type": ("string", "track, page, screen, identify, group, alias"),
    "name": ("string", "A page's or screen's name"),
    "source_id": ("string", "The source (write key) it came through"),
    "timestamp": ("timestamp", "When it happened"),
    "revenue": ("number", "An order's revenue (or total)"),
    "category": ("string", "Category of the product viewed, added or ordered"),
    "brand": ("string", "Brand of the product viewed, added or ordered"),
    "channel": ("string", "web, app, email or store"),
    "browser": ("string", "Browser from the user agent"),
    "device_type": ("string", "context.device.type"),
    "os_name": ("string", "context.os.name"),
    "locale": ("string", "context.locale"),
    "campaign": ("string", "context.campaign.name"),
}
#: ``where properties.NAME ...`` reads any property from the message itself.
PROPERTIES = "properties"


@dataclass(frozen=True)
class AttributeInfo:
    name: str
    kind: str
    source: str
    """``computed``, ``rfm``, ``trait`` or ``event``."""
    description: str = ""

    def as_json(self) -> dict[str, str]:
        return {"name": self.name, "kind": self.kind, "source": self.source, "description": self.description}


def kind_of(dtype: dt.DataType) -> str:
    """The language's kind of an engine column type."""
    if dtype.is_boolean():
        return "boolean"
    if dtype.is_numeric():
        return "number"
    if dtype.is_timestamp():
        return "timestamp"
    if dtype.is_date():
        return "date"
    if dtype.is_array():
        return "list"
    if dtype.is_struct() or dtype.is_map() or dtype.is_json():
        return "object"
    return "string"


def json_kind(value: ir.StringValue) -> ir.StringValue:
    """The kind of a JSON text value, from its first character (portable: no JSON
    function needed), with strings that start like an ISO date as ``date``."""
    first = value.substr(0, 1)
    return ibis.cases(
        (first == '"', ibis.ifelse(value.re_search(r'^"[0-9]{4}-[0-9]{2}-[0-9]{2}'), "date", "string")),
        (first == "[", "list"),
        (first == "{", "object"),
        (value.isin(["true", "false"]), "boolean"),
        else_="number",
    )


class Catalogue:
    """The attributes of one store at one moment (built once per evaluation)."""

    def __init__(self, attributes: dict[str, AttributeInfo], traits: dict[str, AttributeInfo]) -> None:
        self.attributes = attributes
        """Profile attributes by name: computed and RFM (the columns of the profile row)."""
        self.traits = traits
        """Traits by name (values in ``profile_traits``)."""

    def lookup(self, name: str) -> AttributeInfo | None:
        """The attribute a plain or ``traits.``-prefixed name means (``None`` if unknown).
        Dotted names reach into an object trait: their kind is the root's."""
        if name.startswith("traits."):
            return self.traits.get(name.removeprefix("traits."))
        if name in self.attributes:
            return self.attributes[name]
        if name in self.traits:
            return self.traits[name]
        root = name.split(".", 1)[0]
        trait = self.traits.get(root)
        if trait is not None and "." in name and trait.kind == "object":
            return trait
        return None

    def suggestions(self, name: str) -> list[str]:
        known = [*self.attributes, *self.traits]
        return difflib.get_close_matches(name, known, n=3, cutoff=0.6)

    def all(self) -> list[AttributeInfo]:
        shown = dict(self.traits)
        shown.update(self.attributes)
        return sorted(shown.values(), key=lambda a: (a.source, a.name))


def event_field(name: str) -> tuple[str, str] | None:
    """The kind and description of an event field ``where`` can name."""
    if name.startswith(PROPERTIES + ".") and len(name) > len(PROPERTIES) + 1:
        return ("any", "A property of the message")
    return EVENT_FIELDS.get(name)


def event_suggestions(name: str) -> list[str]:
    return difflib.get_close_matches(name, [*EVENT_FIELDS, "properties.NAME"], n=3, cutoff=0.6)
