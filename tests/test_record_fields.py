"""Record fields (product or process, lot, quantity, customer or supplier, immediate action,
cost of non-quality): saved, shown, kept in the history and the CSV export; the tenant's
lists page; the structured cause analysis; a past due date on a new action; hostile input;
the migration on existing records. Both backends."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text

from tests.conftest import csrf_token
from tests.html_forms import form_of, submit_untouched
from tests.records_world import build_world, client_for


@pytest.fixture
def world(app, password_hash):
    world = build_world(app, password_hash)
    from qalitel.records.fields import catalog

    with app.app_context(), world.context():
        admin = world.user("admin")
        world.entries = {}
        for kind, name in (("product", "Shaft 25"), ("process", "Grinding"),
                           ("customer", "Acme Motors"), ("supplier", "Steel & Co"),
                           ("product", "Old gear")):
            world.entries[name] = catalog.add_entry(admin, kind, name).id
    return world


def is_record_form(form) -> bool:
    return {"title", "severity", "folder"} <= form.names()


def _record(world, record_id):
    from qalitel.records.models import NonConformity
    from tenants.context import tdb

    with world.app.app_context(), world.context():
        record = tdb.get(NonConformity, record_id)
        return {c.key: getattr(record, c.key) for c in NonConformity.__table__.columns}


def _history(world, record_id) -> dict[str, tuple]:
    from qalitel.records.models import RecordHistory
    from tenants.context import tdb

    with world.app.app_context(), world.context():
        rows = tdb.execute(select(RecordHistory).where(RecordHistory.record_id == record_id)
                           .order_by(RecordHistory.id)).scalars()
        return {h.field: (h.old_value, h.new_value) for h in rows}


def _count_records(world) -> int:
    from qalitel.records.models import NonConformity
    from tenants.context import tdb

    with world.app.app_context(), world.context():
        return tdb.execute(select(func.count()).select_from(NonConformity)).scalar()


def _new_record(client, world, **fields):
    url = f"/t/{world.slug}/records/new"
    form = form_of(client.get(url).get_data(as_text=True), is_record_form)
    return client.post(url, data=form.data(title="Scratched shafts", **fields))


FIELDS = {"lot": "2411-07", "quantity": "12,5", "quantity_unit": "pcs",
          "immediate_action": "Parts quarantined\nCustomer told", "nq_cost": "1234.5"}


def test_fields_saved_shown_in_history_and_csv(world):
    manager = client_for(world, "manager1")
    response = _new_record(manager, world, product=str(world.entries["Shaft 25"]),
                           partner=str(world.entries["Acme Motors"]), **FIELDS)
    assert response.status_code == 303, response.get_data(as_text=True)[:3000]
    record_id = int(response.headers["Location"].rsplit("/", 1)[1])
    saved = _record(world, record_id)
    assert saved["product_id"] == world.entries["Shaft 25"]
    assert saved["partner_id"] == world.entries["Acme Motors"]
    assert (saved["lot"], saved["quantity"], saved["quantity_unit"]) == (
        "2411-07", Decimal("12.5"), "pcs")
    assert saved["immediate_action"] == "Parts quarantined\nCustomer told"
    assert saved["nq_cost"] == Decimal("1234.50")

    page = manager.get(f"/t/{world.slug}/records/{record_id}").get_data(as_text=True)
    for shown in ("Product: Shaft 25", "Customer: Acme Motors", "2411-07", "12.5 pcs",
                  "Parts quarantined", "€1,234.50"):
        assert shown in page, shown
    manager.environ_base["HTTP_ACCEPT_LANGUAGE"] = "fr"
    page_fr = manager.get(f"/t/{world.slug}/records/{record_id}").get_data(as_text=True)
    assert "1\u202f234,50\xa0€" in page_fr or "1\xa0234,50\xa0€" in page_fr
    manager.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"

    edit = f"/t/{world.slug}/records/{record_id}/edit"
    response = submit_untouched(manager, edit, is_record_form, nq_cost="99.9", lot="2411-08",
                                product=str(world.entries["Grinding"]), quantity="",
                                partner=str(world.entries["Steel & Co"]))
    assert response.status_code == 303
    history = _history(world, record_id)
    assert history["nq_cost"] == ("1234.50", "99.90")
    assert history["lot"] == ("2411-07", "2411-08")
    assert history["product"] == ("Shaft 25", "Grinding")
    assert history["partner"] == ("Acme Motors", "Steel & Co")
    assert history["quantity"] == ("12.5", None)
    assert "quantity_unit" not in history and "immediate_action" not in history
    page = manager.get(f"/t/{world.slug}/records/{record_id}").get_data(as_text=True)
    assert "Cost of non-quality" in page and "99.90" in page and "Shaft 25" in page

    export = manager.get(f"/t/{world.slug}/records/export.csv?q=Scratched")
    rows = list(csv.reader(io.StringIO(export.get_data(as_text=True).lstrip("\ufeff"))))
    header = rows[0]
    for column in ("Product or process", "Lot", "Quantity", "Unit", "Customer or supplier",
                   "Immediate action", "Cost of non-quality"):
        assert column in header, column
    row = dict(zip(header, rows[1], strict=True))
    assert (row["Product or process"], row["Lot"], row["Quantity"], row["Unit"]) == (
        "Grinding", "2411-08", "", "pcs")
    assert (row["Customer or supplier"], row["Cost of non-quality"]) == ("Steel & Co", "99.90")
    assert row["Immediate action"] == "Parts quarantined\nCustomer told"


def test_lists_page_add_rename_archive(world):
    manager = client_for(world, "manager1")
    url = f"/t/{world.slug}/lists/"
    assert client_for(world, "user1").get(url).status_code == 403
    page = manager.get(url).get_data(as_text=True)
    assert "Shaft 25" in page and "Acme Motors" in page

    def add(kind, name):
        return manager.post(url, data={"csrf_token": csrf_token(manager, url), "kind": kind,
                                       "name": name})

    assert add("product", "Bracket").status_code == 303
    duplicate = add("product", "  shaft 25 ")
    assert duplicate.status_code == 400
    assert "already has an entry named" in duplicate.get_data(as_text=True)
    assert add("customer", "Shaft 25").status_code == 303  # another list: allowed
    assert add("colour", "Red").status_code == 400
    assert add("product", "").status_code == 400

    from qalitel.records.field_models import CatalogEntry
    from tenants.context import tdb

    def entry(entry_id):
        with world.app.app_context(), world.context():
            found = tdb.get(CatalogEntry, entry_id)
            return found.name, found.archived

    shaft = world.entries["Shaft 25"]
    rename_url = f"{url}{shaft}"
    untouched = submit_untouched(manager, url, lambda f: f.action == rename_url)
    assert untouched.status_code == 303 and entry(shaft) == ("Shaft 25", False)
    clash = submit_untouched(manager, url, lambda f: f.action == rename_url, name="Old gear")
    assert clash.status_code == 400 and entry(shaft) == ("Shaft 25", False)
    renamed = submit_untouched(manager, url, lambda f: f.action == rename_url,
                               name="Shaft Ø25")
    assert renamed.status_code == 303 and entry(shaft) == ("Shaft Ø25", False)

    # A record naming the entry keeps it once archived; new records cannot pick it.
    made = _new_record(manager, world, product=str(world.entries["Old gear"]))
    assert made.status_code == 303
    record_id = int(made.headers["Location"].rsplit("/", 1)[1])
    gear = world.entries["Old gear"]
    archive = manager.post(f"{url}{gear}/archive",
                           data={"csrf_token": csrf_token(manager, url)})
    assert archive.status_code == 303 and entry(gear) == ("Old gear", True)
    show = manager.get(f"/t/{world.slug}/records/{record_id}").get_data(as_text=True)
    assert "Old gear" in show and "Archived" in show
    edit = f"/t/{world.slug}/records/{record_id}/edit"
    assert "Old gear (archived)" in manager.get(edit).get_data(as_text=True)
    before = _record(world, record_id)
    assert submit_untouched(manager, edit, is_record_form).status_code == 303
    assert _record(world, record_id) == before
    new_form = manager.get(f"/t/{world.slug}/records/new").get_data(as_text=True)
    assert "Old gear" not in new_form
    refused = _new_record(manager, world, product=str(gear))
    assert refused.status_code == 400
    restore = manager.post(f"{url}{gear}/restore",
                           data={"csrf_token": csrf_token(manager, url)})
    assert restore.status_code == 303 and entry(gear) == ("Old gear", False)
    no_csrf = manager.post(f"{url}{gear}/archive", data={})
    assert no_csrf.status_code == 400 and entry(gear) == ("Old gear", False)
    token = csrf_token(manager, url)
    assert add("product", "x" * 101).status_code == 400
    assert add("product", "bad\u200bname").status_code == 400
    assert manager.post(f"{url}{gear}", data={"name": "No token"}).status_code == 400
    assert manager.post(f"{url}424242", data={"csrf_token": token,
                                              "name": "x"}).status_code == 404
    assert manager.post(f"{url}99999999999/archive",
                        data={"csrf_token": token}).status_code == 404
    user = client_for(world, "user1")
    assert user.post(f"{url}{gear}/archive",
                     data={"csrf_token": csrf_token(user, f"/t/{world.slug}/records/")}
                     ).status_code == 403
    assert entry(gear) == ("Old gear", False)
    with world.app.app_context(), world.context():
        names = tdb.execute(select(CatalogEntry.name)).scalars().all()
    assert "No token" not in names and "x" * 101 not in names


def is_analysis_form(form) -> bool:
    return {"why_1", "main_cause"} <= form.names()


def test_five_whys_and_ishikawa_round_trip(world):
    manager = client_for(world, "manager1")
    record_id = world.records["other"]
    url = f"/t/{world.slug}/records/{record_id}/analysis"
    before = _history(world, record_id)
    assert submit_untouched(manager, url, is_analysis_form).status_code == 303
    assert _history(world, record_id) == before

    from qalitel.records.field_models import RecordAnalysis
    from tenants.context import tdb

    with world.app.app_context(), world.context():
        assert tdb.get(RecordAnalysis, record_id) is None  # nothing typed, nothing stored

    response = submit_untouched(manager, url, is_analysis_form,
                                why_1="Why is the shaft oversize?",
                                because_1="The grinding wheel wore out",
                                why_2="Why was it not changed?", because_2="No schedule",
                                ishikawa_machine="Worn wheel\nNo counter",
                                main_cause="machine")
    assert response.status_code == 303
    history = _history(world, record_id)
    assert history["why_1"] == (None, "Why is the shaft oversize?")
    assert history["ishikawa_machine"] == (None, "Worn wheel\nNo counter")
    assert history["main_cause"] == (None, "machine")
    page = manager.get(f"/t/{world.slug}/records/{record_id}").get_data(as_text=True)
    for shown in ("5 Whys", "Why is the shaft oversize?", "No schedule", "Ishikawa grid",
                  "Worn wheel", "Main cause category: Machine", "Ishikawa: Machine"):
        assert shown in page, shown

    with world.app.app_context(), world.context():
        stored = {c.key: getattr(tdb.get(RecordAnalysis, record_id), c.key)
                  for c in RecordAnalysis.__table__.columns}
    count = len(_history(world, record_id))
    assert submit_untouched(manager, url, is_analysis_form).status_code == 303
    with world.app.app_context(), world.context():
        again = {c.key: getattr(tdb.get(RecordAnalysis, record_id), c.key)
                 for c in RecordAnalysis.__table__.columns}
    assert again == stored and len(_history(world, record_id)) == count

    refused = submit_untouched(manager, url, is_analysis_form, main_cause="luck")
    assert refused.status_code == 400
    long = submit_untouched(manager, url, is_analysis_form, why_3="x" * 1001)
    assert long.status_code == 400
    with world.app.app_context(), world.context():
        assert tdb.get(RecordAnalysis, record_id).why_3 == ""
    # Someone who may not edit the record may not edit its analysis.
    assert client_for(world, "user2").get(url).status_code == 404
    shared = f"/t/{world.slug}/records/{world.records['shared_user1']}/analysis"
    assert client_for(world, "user1").get(shared).status_code == 403


def test_a_past_due_date_on_a_new_action_is_saved_and_flagged(world):
    manager = client_for(world, "manager1")
    url = f"/t/{world.slug}/records/{world.records['other']}/actions/new"
    form = form_of(manager.get(url).get_data(as_text=True), lambda f: "kind" in f.names())
    past = (date.today() - timedelta(days=5)).isoformat()
    response = manager.post(url, data=form.data(title="Sort the stock", due_date=past))
    assert response.status_code == 303
    page = manager.get(response.headers["Location"]).get_data(as_text=True)
    assert "Action saved." in page
    assert "Its due date is already past" in page and "Overdue" in page
    future = (date.today() + timedelta(days=5)).isoformat()
    response = manager.post(url, data=form.data(title="Audit", due_date=future))
    page = manager.get(response.headers["Location"]).get_data(as_text=True)
    assert "Its due date is already past" not in page


HOSTILE = [
    {"nq_cost": "-1"}, {"nq_cost": "1e12"}, {"nq_cost": "abc"}, {"nq_cost": "12.345"},
    {"nq_cost": "NaN"}, {"nq_cost": "Infinity"}, {"nq_cost": "9" * 60},
    {"quantity": "-5"}, {"quantity": "x"}, {"quantity": "1.0001"}, {"quantity": "1e10"},
    {"lot": "L" * 61}, {"quantity_unit": "u" * 21}, {"lot": "bad\x00lot"},
    {"product": "999999"}, {"product": "99999999999"}, {"product": "abc"},
    {"partner": "-3"},
]


def test_hostile_input_is_refused_and_nothing_is_saved(world):
    manager = client_for(world, "manager1")
    count = _count_records(world)
    record_id = world.records["other"]
    before = _record(world, record_id)
    edit = f"/t/{world.slug}/records/{record_id}/edit"
    for bad in HOSTILE:
        response = _new_record(manager, world, **bad)
        assert response.status_code == 400, bad
        response = submit_untouched(manager, edit, is_record_form, **bad)
        assert response.status_code == 400, bad
    assert _count_records(world) == count
    assert _record(world, record_id) == before


def test_another_kinds_entry_and_missing_csrf_are_refused(world):
    manager = client_for(world, "manager1")
    count = _count_records(world)
    for bad in ({"product": str(world.entries["Acme Motors"])},
                {"partner": str(world.entries["Shaft 25"])}):
        assert _new_record(manager, world, **bad).status_code == 400
    url = f"/t/{world.slug}/records/new"
    form = form_of(manager.get(url).get_data(as_text=True), is_record_form)
    data = form.data(title="No token", nq_cost="10")
    del data["csrf_token"]
    assert manager.post(url, data=data).status_code == 400
    assert _count_records(world) == count
    # The service refuses the same, whatever the form lets through.
    from qalitel.records import service

    with world.app.app_context(), world.context():
        for fields in ({"product": world.entries["Steel & Co"]}, {"nq_cost": "-0.01"},
                       {"quantity": Decimal("NaN")}, {"colour": "red"}):
            with pytest.raises(service.RecordError):
                service.create_nonconformity(world.user("manager1"), "Bad", fields=fields)


def test_migration_leaves_existing_records_empty_and_usable(backend, tmp_path):
    from tenants import migrations
    from tests.test_alembic import scratch_engine

    with scratch_engine(backend, tmp_path) as engine:
        with engine.begin() as conn:
            migrations.upgrade(conn, "tenant", "t0008")
            conn.execute(text("INSERT INTO nonconformities (number, title, description, status, "
                              "detected_on, origin, severity, cause_analysis) VALUES (1, 'Old', "
                              "'', 'open', '2026-01-05', 'internal', 'minor', '')"))
        with engine.begin() as conn:
            migrations.upgrade(conn, "tenant")
            row = conn.execute(text("SELECT lot, quantity, quantity_unit, product_id, "
                                    "partner_id, immediate_action, nq_cost FROM "
                                    "nonconformities")).one()
            assert tuple(row) == ("", None, "", None, None, "", None)
            assert conn.execute(text("SELECT count(*) FROM nonconformity_analyses")).scalar() == 0


def test_tenant_export_and_import_keep_exact_decimals(make_app, backend, tmp_path,
                                                      password_hash):
    from qalitel.records.field_models import CatalogEntry, RecordAnalysis
    from qalitel.records.models import NonConformity
    from tests.conftest import in_tenant
    from tests.export_world import export, make_tenant, run, scan

    app = make_app(backend)
    handle = make_tenant(app, "acme", password_hash)
    with in_tenant(app, "acme") as session:
        entry = CatalogEntry(kind="product", name="Shaft 25")
        session.add(entry)
        session.flush()
        record = session.get(NonConformity, handle.record_ids[0])
        record.product_id, record.quantity = entry.id, Decimal("12.345")
        record.nq_cost, record.lot = Decimal("99999999.99"), "L1"
        session.add(RecordAnalysis(record_id=record.id, why_1="Why?", main_cause="method"))
        session.commit()
    archive = tmp_path / "acme.zip"
    assert export(app, "acme", "--output", archive).exit_code == 0
    result = run(app, "tenants", "import", archive, "--as", "acme-copy")
    assert result.exit_code == 0, result.output
    assert scan(app, "acme") == scan(app, "acme-copy")
    with in_tenant(app, "acme-copy") as session:
        copy = session.get(NonConformity, handle.record_ids[0])
        assert (copy.quantity, copy.nq_cost) == (Decimal("12.345"), Decimal("99999999.99"))


def test_analysis_edit_conflict_keeps_the_other_change(world):
    from qalitel.records.fields import analysis
    from qalitel.records.models import NonConformity
    from tenants.context import tdb

    manager = client_for(world, "manager1")
    record_id = world.records["other"]
    url = f"/t/{world.slug}/records/{record_id}/analysis"
    stale = form_of(manager.get(url).get_data(as_text=True), is_analysis_form)
    with world.app.app_context(), world.context():
        analysis.update_analysis(world.user("admin"), tdb.get(NonConformity, record_id),
                                 why_1="Admin's why")
    clash = manager.post(url, data=stale.data(why_1="Manager's why"))
    assert clash.status_code == 409
    assert "Manager&#39;s why" in clash.get_data(as_text=True)
    assert manager.post(url, data=stale.data(why_2="Second why")).status_code == 303
    with world.app.app_context(), world.context():
        values = analysis.current(tdb.get(NonConformity, record_id))
    assert (values["why_1"], values["why_2"]) == ("Admin's why", "Second why")
