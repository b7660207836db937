from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from patron.collect.importers import ImportFileError, MissingColumn
from patron.workspace import Workspace

from .conftest import StoredEvents

CRM = """RecordId,firstName,lastName,email,phone,address.street,address.city,address.postalCode,address.country,lifetime_value,age,tier
C-1,Ann,Lee,ann@example.com,0123 456,1 Main St,Springfield,01234,US,120.5,41,gold
C-2,Bo,,bo@example.com,,,,,,,,
"""


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "crm.csv"
    path.write_text(text)
    return path


def test_each_row_is_an_identify_with_an_external_id_not_a_user_id(
    tmp_path: Path, workspace: Workspace, stored: StoredEvents
) -> None:
    report = workspace.imports.customers(_csv(tmp_path, CRM), id_column="RecordId")
    assert (report.read, report.stored, report.rejected) == (2, 2, 0)
    first, second = stored.rows()
    assert (first["source_id"], first["type"], first["user_id"], first["anonymous_id"]) == ("crm", "identify", None, None)
    message = first["message"]
    assert "userId" not in message and "anonymousId" not in message
    assert message["context"]["externalIds"] == [
        {"id": "C-1", "type": "crm_id", "collection": "users", "encoding": "none"}
    ]
    assert message["traits"] == {
        "firstName": "Ann",
        "lastName": "Lee",
        "email": "ann@example.com",
        "phone": "0123 456",
        "address": {"street": "1 Main St", "city": "Springfield", "postalCode": "01234", "country": "US"},
        "lifetime_value": 120.5,
        "age": 41,
        "tier": "gold",
    }
    # empty cells are left out, not stored as ""
    assert second["message"]["traits"] == {"firstName": "Bo", "email": "bo@example.com"}


def test_reimport_is_idempotent_and_a_changed_row_adds_one(tmp_path: Path, workspace: Workspace) -> None:
    path = _csv(tmp_path, CRM)
    workspace.imports.customers(path, id_column="RecordId")
    again = workspace.imports.customers(path, id_column="RecordId")
    assert (again.stored, again.duplicates) == (0, 2)
    path.write_text(CRM.replace("bo@example.com", "bo@example.org"))
    changed = workspace.imports.customers(path, id_column="RecordId")
    assert (changed.stored, changed.duplicates) == (1, 1)
    assert workspace.events.counts().total == 3


def test_the_source_names_the_external_id_type(tmp_path: Path, workspace: Workspace, stored: StoredEvents) -> None:
    workspace.imports.customers(_csv(tmp_path, CRM), id_column="RecordId", source_id="hubspot")
    assert {r["message"]["context"]["externalIds"][0]["type"] for r in stored.rows("hubspot")} == {"hubspot_id"}


def test_map_renames_columns_to_traits(tmp_path: Path, workspace: Workspace, stored: StoredEvents) -> None:
    path = _csv(tmp_path, "id,E-Mail,Town\n7,x@example.com,Lyon\n")
    workspace.imports.customers(path, id_column="id", mapping={"email": "E-Mail", "address.city": "Town"})
    assert stored.rows()[0]["message"]["traits"] == {"email": "x@example.com", "address": {"city": "Lyon"}}


def test_rows_without_an_id_are_rejected(tmp_path: Path, workspace: Workspace, stored: StoredEvents) -> None:
    report = workspace.imports.customers(_csv(tmp_path, "id,email\n,a@example.com\n2,b@example.com\n"), id_column="id")
    assert (report.stored, report.rejected) == (1, 1)
    failed = stored.failed()[0]
    assert failed["message_index"] == 1 and "'id' is empty" in failed["reason"]


def test_parquet_keeps_its_types(tmp_path: Path, workspace: Workspace, stored: StoredEvents) -> None:
    path = tmp_path / "crm.parquet"
    pq.write_table(
        pa.table({"id": [1], "birthday": [date(1980, 2, 3)], "score": [0.5], "vip": [True], "note": [None]}), path
    )
    workspace.imports.customers(path, id_column="id")
    message = stored.rows()[0]["message"]
    assert message["traits"] == {"birthday": "1980-02-03", "score": 0.5, "vip": True}
    assert message["context"]["externalIds"][0]["id"] == "1"


def test_missing_id_column_lists_the_columns(tmp_path: Path, workspace: Workspace) -> None:
    with pytest.raises(MissingColumn, match=r"no column 'CustomerId' for --id-column .*columns are: RecordId, firstName"):
        workspace.imports.customers(_csv(tmp_path, CRM), id_column="CustomerId")
    with pytest.raises(ImportFileError, match="no column 'Mail'"):
        workspace.imports.customers(_csv(tmp_path, CRM), id_column="RecordId", mapping={"email": "Mail"})
