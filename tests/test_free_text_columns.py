"""Every text column of the tenant schema is either free text (exported when it mentions a
person, rewritten when they are erased) or listed as not free text with a reason; on both
backends, the erasure rewrites the record fields, the 5 Whys and Ishikawa, the lists and the
notification subjects, and leaves no trace in the folded search copies."""

from __future__ import annotations

import importlib
import pkgutil

import pytest
from sqlalchemy import String, Text, select

from tests.records_world import build_world


def _tenant_text_columns() -> set[tuple[str, str]]:
    import qalitel
    from tenants.schema import TenantBase

    for module in pkgutil.walk_packages(qalitel.__path__, "qalitel."):
        if module.name.rsplit(".", 1)[-1].endswith("models"):
            importlib.import_module(module.name)
    return {(table.name, column.name) for table in TenantBase.metadata.sorted_tables
            for column in table.columns if isinstance(column.type, String | Text)}


def test_every_text_column_is_free_text_or_exempted_with_a_reason():
    from qalitel.my_data.mentions import FREE_TEXT, NOT_FREE_TEXT

    listed = {(t, c) for t, cols in FREE_TEXT.items() for c in cols}
    exempt = {(t, c) for t, cols in NOT_FREE_TEXT.items() for c, why in cols.items() if why}
    columns = _tenant_text_columns()
    assert ("nonconformity_analyses", "why_1") in columns  # the walk sees every model
    assert not listed & exempt, listed & exempt
    assert columns - listed - exempt == set(), "classify these in qalitel/my_data/mentions.py"
    assert (listed | exempt) - columns == set(), "no such columns any more"


@pytest.fixture
def world(app, password_hash):
    return build_world(app, password_hash)


def _fill(world, name: str) -> dict[str, int]:
    from qalitel.notifications.models import Kind, Notification
    from qalitel.records import service
    from qalitel.records.fields import analysis, catalog
    from qalitel.records.models import NonConformity
    from tenants.context import tdb

    with world.app.test_request_context(), world.context():
        manager = world.user("manager1")
        record = tdb.get(NonConformity, world.records["other"])
        analysis.update_analysis(manager, record, why_1=f"{name} skipped the check",
                                 because_2=f"nobody told {name}",
                                 ishikawa_manpower=f"{name} untrained")
        service.update_nonconformity(manager, record, immediate_action=f"{name} sorted stock",
                                     lot=f"LOT {name}",
                                     description=f"Seen by {name}")
        entry = catalog.add_entry(manager, "customer", f"{name} Ltd")
        tdb.add(Notification(key="x:1", kind=Kind.ASSIGNMENT.value, user_id=world.users["admin"],
                             object_type="record", object_id=record.id,
                             subject=f"Acme: action assigned to you: call {name}",
                             error=f"550 no such user {world.emails['user1']}"))
        tdb.flush()
        return {"record": record.id, "entry": entry.id}


def test_erasure_rewrites_the_new_free_text_and_the_search_copy(world):
    from core.text import fold
    from qalitel.my_data.erasure import erase, pseudonym_name
    from qalitel.notifications.models import Notification
    from qalitel.records.field_models import CatalogEntry, RecordAnalysis
    from qalitel.records.models import NonConformity
    from tenants.context import tdb

    with world.app.app_context(), world.context():
        name, email = world.user("user1").name, world.emails["user1"]
    ids = _fill(world, name)
    with world.app.app_context(), world.context():
        assert fold(name) in tdb.get(NonConformity, ids["record"]).search_text
        erase(world.user("user1"), "7F3A")
    with world.app.app_context(), world.context():
        record = tdb.get(NonConformity, ids["record"])
        row = tdb.get(RecordAnalysis, ids["record"])
        note = tdb.execute(select(Notification).where(Notification.key == "x:1")).scalar_one()
        left = [row.why_1, row.because_2, row.ishikawa_manpower, record.immediate_action,
                record.lot, tdb.get(CatalogEntry, ids["entry"]).name, note.subject,
                note.error, record.search_text]
        assert not any(name.lower() in v.lower() or email in v for v in left), left
        assert fold(name) not in record.search_text
        assert row.why_1 == f"{pseudonym_name('7F3A')} skipped the check"
        assert tdb.get(CatalogEntry, ids["entry"]).name == f"{pseudonym_name('7F3A')} Ltd"
        assert "former-user-7f3a@" in note.error


def test_the_export_holds_the_analysis_and_list_mentions_the_person_may_see(world):
    from qalitel.my_data.collect import personal_data
    from tenants.context import tdb

    with world.app.app_context(), world.context():
        name = world.user("manager1").name
    ids = _fill(world, name)
    with world.app.app_context(), world.context():
        data = personal_data(tdb, world.users["manager1"])
        assert [r["record_id"] for r in data["nonconformity_analyses"]] == [ids["record"]]
        assert [r["id"] for r in data["catalog_entries"]] == [ids["entry"]]
        assert [r["subject"] for r in data["notifications"]] == [
            f"Acme: action assigned to you: call {name}"]
        outsider = personal_data(tdb, world.users["user2"])  # cannot see record "other"
        assert outsider["nonconformity_analyses"] == []
