"""Person records for the probabilistic matcher: one per profile, from its merged traits.

Columns: ``record_id`` (the profile id), the standard traits the matcher reads
(``firstName``, ``lastName``, ``birthday``, ``email``, ``phone`` and the address parts
``address_street``, ``address_city``, ``address_postalCode``, ``address_state``, taken
from the ``address`` object), and any custom traits named with ``on``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import pyarrow as pa

from patron.store.base import Store

_STANDARD = ("firstName", "lastName", "birthday", "email", "phone")
_ADDRESS = ("street", "city", "postalCode", "state")


def match_records(store: Store, traits_table: str, on: Sequence[str] = ()) -> pa.Table:
    wanted = [*_STANDARD, "address", *on]
    traits = store.table(traits_table)
    rows = store.to_pyarrow(
        traits.filter(traits.trait.isin(wanted)).select("profile_id", "trait", "value").order_by("profile_id")
    ).to_pylist()
    columns = ["record_id", *_STANDARD, *(f"address_{part}" for part in _ADDRESS), *on]
    records: dict[str, dict[str, Any]] = {}
    for row in rows:
        record = records.setdefault(row["profile_id"], {"record_id": row["profile_id"]})
        value = orjson.loads(row["value"])
        if row["trait"] == "address":
            if isinstance(value, dict):
                for part in _ADDRESS:
                    if value.get(part) not in (None, ""):
                        record[f"address_{part}"] = str(value[part])
        elif value is not None and not isinstance(value, dict | list):
            record[row["trait"]] = str(value)
    return pa.Table.from_pylist(
        list(records.values()), schema=pa.schema([(c, pa.string()) for c in columns])
    )
