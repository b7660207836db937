"""Person records for the probabilistic matcher: one per profile, from its merged traits.

Columns: ``record_id`` (the profile id), the standard traits the matcher reads
(``firstName``, ``lastName``, ``birthday``, ``email``, ``phone`` and the address parts
``address_street``, ``address_city``, ``address_postalCode``, ``address_state``, taken
from the ``address`` object), and any custom traits named with ``on``.

The pivot (one row per profile) and the address parts are computed in the store's
engine; only the values' JSON text comes back, decoded here column by column: a plain
JSON string is unquoted in one vectorised step, and only the rare other values (escaped
strings, numbers, booleans) are parsed one by one. A number or boolean becomes its text;
objects, lists and ``null`` are missing. At a million profiles this keeps the step to
seconds and the memory to the columns themselves.
"""

from __future__ import annotations

from collections.abc import Sequence

import ibis.expr.datatypes as dt
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from patron.store.base import Store

_STANDARD = ("firstName", "lastName", "birthday", "email", "phone")
_ADDRESS = ("street", "city", "postalCode", "state")


def match_records(store: Store, traits_table: str, on: Sequence[str] = ()) -> pa.Table:
    plain = list(dict.fromkeys([*_STANDARD, *on]))
    traits = store.table(traits_table)
    rows = traits.filter(traits.trait.isin([*plain, "address"]))
    address = rows.value.cast(dt.json)
    is_address = rows.trait == "address"
    columns = {
        **{name: rows.value.max(where=rows.trait == name) for name in plain},
        **{f"address_{part}": address[part].cast(dt.string).max(where=is_address) for part in _ADDRESS},
    }
    pivot = rows.group_by(record_id=rows.profile_id).aggregate(**columns).order_by("record_id")
    table = store.to_pyarrow(pivot)
    order = ["record_id", *_STANDARD, *(f"address_{part}" for part in _ADDRESS), *on]
    decoded = {"record_id": table["record_id"].cast(pa.string())}
    for name in dict.fromkeys(order[1:]):
        decoded[name] = _decode(table[name], blank_is_missing=name.startswith("address_"))
    return pa.table(decoded, schema=pa.schema([(c, pa.string()) for c in decoded]))


def _decode(json_text: pa.ChunkedArray, *, blank_is_missing: bool) -> pa.Array:
    """JSON text -> the value as text (``None`` for null, objects and lists)."""
    values = json_text.combine_chunks().cast(pa.string())
    simple = pc.and_(pc.starts_with(values, '"'), pc.invert(pc.match_substring(values, "\\")))
    simple = pc.fill_null(simple, False)
    out = pc.if_else(simple, pc.utf8_slice_codeunits(values, 1, -1), pa.scalar(None, pa.string()))
    rest = pc.and_(pc.invert(simple), pc.is_valid(values))
    if pc.any(rest).as_py():
        texts = pc.filter(values, rest).to_pylist()
        out = pc.replace_with_mask(out, rest, pa.array([_scalar_text(t) for t in texts], pa.string()))
    if blank_is_missing:
        out = pc.if_else(pc.equal(out, ""), pa.scalar(None, pa.string()), out)
    return out


def _scalar_text(text: str) -> str | None:
    value = orjson.loads(text)
    if value is None or isinstance(value, dict | list):
        return None
    return str(value)
