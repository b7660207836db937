"""The records the probabilistic matcher reads, and how they are cleaned first.

The matcher takes a pyarrow table with one row per record: ``record_id`` (any type,
unique) and any of the standard traits below, under their flattened names
(``address_street``) or their dotted import names (``address.street``). Custom traits
(a national id, a loyalty card number) are named with ``on=[...]``. Every other column is
ignored.

Values are cleaned the same way on both sides of a comparison, so that formatting
differences never count as disagreement:

* every value is read as text, trimmed, inner runs of white space collapsed;
  empty text is missing;
* names, street, city and state are lower-cased;
* ``birthday`` becomes ``YYYY-MM-DD`` from ``YYYYMMDD``, ``YYYY-MM-DD``, ``YYYY/MM/DD``
  or an ISO timestamp (a date or timestamp column works as it is); anything else is
  missing, as are impossible dates such as the 31st of February;
* ``email`` is lower-cased; ``phone`` keeps its digits only (at least six);
  ``address_postalCode`` loses its spaces and is lower-cased;
* custom traits are trimmed but keep their case (ids are case-sensitive);
* email, phone and custom values that are placeholders (``null``, ``0``, ``n/a``,
  ``test@test.com``: :data:`~patron.identity.identifiers.DEFAULT_BLOCKED_VALUES`) are
  missing, or everyone who sent them would look alike.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from patron.identity.exceptions import InvalidMatchInput
from patron.identity.identifiers import DEFAULT_BLOCKED_VALUES

RECORD_ID = "record_id"
FULL_NAME = "full_name"

#: Standard trait (its flattened input name) -> the column name used inside the model.
STANDARD_TRAITS: dict[str, str] = {
    "firstName": "first_name",
    "lastName": "last_name",
    "birthday": "birthday",
    "email": "email",
    "phone": "phone",
    "address_street": "street",
    "address_city": "city",
    "address_postalCode": "postcode",
    "address_state": "state",
}

_LOWER_TEXT = frozenset({"first_name", "last_name", "street", "city", "state", "email"})
_BLOCKED = "|".join(f"(?:{p})" for p in DEFAULT_BLOCKED_VALUES)


@dataclass(frozen=True)
class PreparedRecords:
    """Records cleaned for the model, and what the model may compare.

    Attributes:
        table: ``record_id`` (text) and one text column per trait, named as in
            :data:`STANDARD_TRAITS` values; custom traits are ``custom_<n>``; with both
            names, ``full_name`` (first and last, missing when either is).
        columns: model column -> the trait it came from, for columns with at least
            two non-missing values (a column nobody shares tells the model nothing).
        custom: the model columns of the custom traits, in the order given.
    """

    table: pa.Table
    columns: dict[str, str]
    custom: tuple[str, ...]


def prepare_records(records: pa.Table, on: Sequence[str] = ()) -> PreparedRecords:
    """Clean ``records`` for matching (module docstring).

    Raises:
        InvalidMatchInput: no ``record_id`` column, a missing or repeated record id, a
            trait in ``on`` the table lacks, or no trait the model can compare.
    """
    names = {name.replace(".", "_"): name for name in records.column_names}
    if RECORD_ID not in names:
        raise InvalidMatchInput(f"the table has no {RECORD_ID!r} column", records.column_names)
    ids = _as_text(records[names[RECORD_ID]])
    if ids.null_count:
        raise InvalidMatchInput(f"{ids.null_count} record(s) have no {RECORD_ID}")
    if pc.count_distinct(ids).as_py() != len(ids):
        raise InvalidMatchInput(f"{RECORD_ID} values repeat; each record needs its own id")
    missing = [trait for trait in on if trait not in records.column_names and trait not in names]
    if missing:
        raise InvalidMatchInput("the traits given with on=[...] are not columns of the table", missing)

    arrays: dict[str, pa.ChunkedArray] = {RECORD_ID: ids}
    traits: dict[str, str] = {}
    for trait, column in STANDARD_TRAITS.items():
        if trait in names and trait not in on:
            arrays[column] = _clean(column, records[names[trait]])
            traits[column] = names[trait]
    custom = []
    for n, trait in enumerate(dict.fromkeys(on)):
        column = f"custom_{n}"
        source = trait if trait in records.column_names else names[trait]
        arrays[column] = _clean(column, records[source])
        traits[column] = trait
        custom.append(column)

    if "first_name" in arrays and "last_name" in arrays:
        # The whole name, for how common it is (term frequencies of the name comparison).
        arrays[FULL_NAME] = pc.binary_join_element_wise(arrays["first_name"], arrays["last_name"], " ")
    table = pa.table(arrays)
    usable = {c: t for c, t in traits.items() if len(table) - table[c].null_count >= 2}
    if set(usable) <= {"state"}:
        raise InvalidMatchInput(
            "no trait to compare (a state alone pairs nearly everyone); give at least one of "
            "the other standard traits or name custom ones with on=[...]",
            [*STANDARD_TRAITS, *on],
        )
    return PreparedRecords(table, usable, tuple(c for c in custom if c in usable))


def _as_text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_timestamp(column.type):
        column = pc.cast(column, pa.date32())
    return pc.cast(column, pa.string())


def _clean(column: str, values: pa.ChunkedArray) -> pa.ChunkedArray:
    text = _as_text(values)
    text = pc.utf8_trim_whitespace(text)
    text = pc.replace_substring_regex(text, r"\s+", " ")
    if column in _LOWER_TEXT or column == "postcode":
        text = pc.utf8_lower(text)
    if column == "birthday":
        text = _iso_date(text)
    elif column == "phone":
        text = pc.replace_substring_regex(text, r"[^0-9]", "")
        text = pc.if_else(pc.greater_equal(pc.utf8_length(text), 6), text, None)
    elif column == "postcode":
        text = pc.replace_substring(text, " ", "")
    if column in ("email", "phone") or column.startswith("custom_"):
        blocked = pc.match_substring_regex(pc.utf8_lower(text), f"^(?:{_BLOCKED})$")
        text = pc.if_else(blocked, None, text)
    return pc.if_else(pc.equal(text, ""), None, text)


_DATE = re.compile(r"^(\d{4})[-/]?(\d{2})[-/]?(\d{2})(?:[T ].*)?$")


def _iso_date(text: pa.ChunkedArray) -> pa.ChunkedArray:
    iso = pc.replace_substring_regex(text, _DATE.pattern, r"\1-\2-\3")
    shaped = pc.match_substring_regex(iso, r"^\d{4}-\d{2}-\d{2}$")
    iso = pc.if_else(shaped, iso, None)
    # A real calendar date, or missing: month 13 does not parse, and the 31st of
    # February parses as the 3rd of March, so it must also read back the same.
    parsed = pc.strptime(iso, format="%Y-%m-%d", unit="s", error_is_null=True)
    back = pc.strftime(parsed, format="%Y-%m-%d")
    return pc.if_else(pc.equal(back, iso), iso, None)
