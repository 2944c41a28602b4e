"""The folded ``search_text`` columns are right after every write path, on both backends: ORM
writes (the tenant session's ``before_flush``), the erasure, a tenant import, a backup
restore, the demo, an engineer's edit through the maintenance door, and the migration's
backfill of existing rows."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select, text

from tests.conftest import in_tenant
from tests.records_world import World, build_world, client_for


def _stored(app, slug: str, model, row_id: int) -> str:
    with in_tenant(app, slug) as session:
        return session.execute(select(model.search_text).where(model.id == row_id)).scalar_one()


def test_every_orm_write_keeps_the_column(app, password_hash):
    from qalitel.records import service
    from qalitel.records.models import Action, NonConformity
    from tests.conftest import provision

    handle = provision(app, "acme", password_hash, records=1)
    [record_id] = handle.record_ids
    with in_tenant(app, "acme") as session:
        from qalitel.users.models import User

        user = session.get(User, handle.user_ids["admin"])
        record = session.get(NonConformity, record_id)
        service.update_nonconformity(user, record, title="Écrou DESSERRÉ",
                                     cause_analysis="Couple insuffisant")
        action = service.create_action(user, "Resserrer", record=record,
                                       description="Clé à œil")
        service.update_action(user, action, description="Clé plate")
        session.commit()
        action_id = action.id
    assert _stored(app, "acme", NonConformity, record_id) == \
        "ecrou desserre secret of acme couple insuffisant"
    assert _stored(app, "acme", Action, action_id) == "resserrer cle plate"
    with in_tenant(app, "acme") as session:
        session.get(NonConformity, record_id).status = "analysis"  # no searched field
        session.commit()
        # the record is found through its action's text as it is now, not as it was
        from qalitel.records.search import record_match

        def found(q: str) -> bool:
            return session.execute(select(NonConformity.id).where(record_match(q))).first() \
                is not None

        assert found("CLÉ PLATE") and found("desserre couple") and not found("cle a oeil")
        session.delete(session.get(Action, action_id))
        session.commit()
        assert not found("cle plate") and found("ecrou")
    assert _stored(app, "acme", NonConformity, record_id).startswith("ecrou")


def test_an_analysis_edit_keeps_its_column(app, password_hash):
    from qalitel.records.field_models import RecordAnalysis
    from qalitel.records.fields.analysis import update_analysis
    from qalitel.records.models import NonConformity
    from qalitel.records.search import record_match
    from qalitel.users.models import User
    from tests.conftest import provision

    handle = provision(app, "acme", password_hash, records=1)
    [record_id] = handle.record_ids
    with in_tenant(app, "acme") as session:
        user = session.get(User, handle.user_ids["admin"])
        record = session.get(NonConformity, record_id)
        update_analysis(user, record, why_1="Pourquoi ?", because_1="Pièce DÉFORMÉE",
                        main_cause="machine")
        session.commit()
        assert session.get(RecordAnalysis, record_id).search_text == \
            "pourquoi ? piece deformee"
        update_analysis(user, record, because_1="", ishikawa_machine="Usure de l’outil")
        session.commit()
        assert session.get(RecordAnalysis, record_id).search_text == \
            "pourquoi ? usure de l’outil"

        def found(q: str) -> bool:
            return session.execute(select(NonConformity.id).where(record_match(q))).first() \
                is not None

        assert found("USURE outil") and not found("deformee")


def _erase(world: World, key: str) -> None:
    from core.db import db
    from qalitel.my_data import requests as erasures

    with world.app.app_context():
        with world.context():
            erasures.decide(erasures.request_erasure(world.user(key)), world.user("admin"),
                            True)
        db.session.commit()


def test_erasure_rewrites_the_search_column(app, password_hash):
    from qalitel.records import service
    from qalitel.records.models import Action, NonConformity
    from qalitel.users import service as users

    world = build_world(app, password_hash)
    with app.app_context(), world.context():
        users.rename(world.user("user2"), "Zoé Lefèvre")
    with app.app_context(), world.context():
        manager = world.user("manager1")
        record = service.create_nonconformity(manager, "Signalé par Zoé Lefèvre",
                                              "Appeler Zoé Lefèvre demain")
        action = service.create_action(manager, "Former Zoé Lefèvre", record=record)
        ids = record.id, action.id
    manager = client_for(world, "manager1")
    html = manager.get(f"/t/{world.slug}/records/", query_string={"q": "zoe lefevre"}).get_data(
        as_text=True)
    assert "Signalé par" in html
    assert "lefevre" in _stored(app, world.slug, NonConformity, ids[0])
    _erase(world, "user2")
    for model, row_id in ((NonConformity, ids[0]), (Action, ids[1])):
        stored = _stored(app, world.slug, model, row_id)
        assert "lefevre" not in stored and "former user" in stored, stored
    html = manager.get(f"/t/{world.slug}/records/", query_string={"q": "lefevre"}).get_data(
        as_text=True)
    assert "Signal" not in html
    html = manager.get(f"/t/{world.slug}/actions/", query_string={"q": "zoe"}).get_data(
        as_text=True)
    assert "Former user" not in html


def _blank_search_text(app, slug: str) -> None:
    with in_tenant(app, slug) as session:
        session.execute(text("UPDATE nonconformities SET search_text = ''"))
        session.execute(text("UPDATE actions SET search_text = ''"))
        session.commit()


def _count(app, slug: str, word: str) -> int:
    from qalitel.records.models import NonConformity

    with in_tenant(app, slug) as session:
        return len(session.execute(select(NonConformity.id).where(
            NonConformity.search_text.contains(word))).all())


def test_an_import_recomputes_the_column(app, password_hash, tmp_path):
    from tests.export_world import export, make_tenant, run

    make_tenant(app, "acme", password_hash)  # a record titled "Fissure sur soudure Zébulon"
    _blank_search_text(app, "acme")  # as an archive of stale or forged rows would hold
    archive = tmp_path / "acme.zip"
    assert export(app, "acme", "--output", archive).exit_code == 0
    result = run(app, "tenants", "import", archive, "--as", "acme-copy")
    assert result.exit_code == 0, result.output
    assert _count(app, "acme-copy", "zebulon") == 1
    assert _count(app, "acme", "zebulon") == 0


def test_a_restore_recomputes_the_column(make_app, backend, tmp_path, password_hash):
    from tests.backup_world import make_world

    world = make_world(make_app, backend, tmp_path, password_hash)  # "… Zebulon-4471"
    _blank_search_text(world.app, "acme")  # as a backup from before the column would
    assert world.run("backup", "run", "acme").exit_code == 0
    result = world.run("backup", "restore", "acme", "1")
    assert result.exit_code == 0, result.output
    assert _count(world.app, "acme", "zebulon-4471") == 1


def test_the_demo_is_searchable(tmp_path):
    from qalitel.records.field_models import RecordAnalysis
    from qalitel.records.models import Action, NonConformity
    from tests.test_demo import demo_app, dispose

    app = demo_app(tmp_path)  # the demo is the embedded default: SQLite
    try:
        result = app.test_cli_runner().invoke(args=["demo"])
        assert result.exit_code == 0, result.output
        with in_tenant(app, "demo") as session:
            for model in (NonConformity, Action, RecordAnalysis):
                rows = session.execute(select(model)).scalars().all()
                assert rows
                for row in rows:
                    assert row.search_text and row.search_text == _fold_of(row), row
    finally:
        dispose(app)


def _fold_of(row) -> str:
    from qalitel.records.search import text_of

    return text_of(row, type(row).SEARCHED)


def test_an_engineers_edit_through_the_maintenance_door_is_searchable(maint_world):
    from core.db import db
    from maintenance import access, grants
    from maintenance.models import Grant, MaintenanceRequest, StaffUser
    from qalitel.records.models import NonConformity
    from tests.test_grants import ADMIN

    app = maint_world.app
    public_id = maint_world.request("alpha", scope="read-write")
    record_id = maint_world.tenants.a.record_ids[0]
    with app.app_context():
        req = db.session.query(MaintenanceRequest).filter_by(public_id=public_id).one()
        grant_id = grants.approve(req, ADMIN).id
        grant = db.session.get(Grant, grant_id)
        with access.open_session(grant, db.session.get(StaffUser, maint_world.eve.id)) as door:
            door.update_field("nonconformities", str(record_id), "cause_analysis",
                              "Dérive du capteur thermique")
            door.update_field("nonconformities", str(record_id), "severity", "major")
    stored = _stored(app, "alpha", NonConformity, record_id)
    assert stored.endswith("derive du capteur thermique"), stored
    assert stored.startswith(maint_world.marker.lower())


# ------------------------------------------------------------------ the migration


def test_the_migration_folds_existing_rows(backend, tmp_path):
    from tenants import migrations
    from tests.test_alembic import scratch_engine

    with scratch_engine(backend, tmp_path) as engine, engine.begin() as conn:
        migrations.upgrade(conn, "tenant", "t0008")
        conn.execute(text(
            "INSERT INTO nonconformities (number, title, description, status, "
            "detected_on, origin, severity, cause_analysis, created_at, updated_at) "
            "VALUES (:n, :t, :d, 'open', :day, 'internal', 'minor', :c, :at, :at)"),
            [{"n": n, "t": f"Réclamation n°{n}", "d": "Boîte" if n % 2 else "",
              "c": "Œil" if n == 1202 else "", "day": date(2026, 1, 2),
              "at": "2026-01-02 03:04:05"} for n in range(1, 1203)])  # > two batches
        conn.execute(text(
            "INSERT INTO actions (record_id, kind, title, description, status, "
            "created_at, updated_at) VALUES (1, 'corrective', 'Étalonner', 'Straße', "
            "'planned', '2026-01-02 03:04:05', '2026-01-02 03:04:05')"))
        migrations.upgrade(conn, "tenant")
        rows = dict(conn.execute(text("SELECT number, search_text FROM nonconformities")
                                 ).all())
        action = conn.execute(text("SELECT search_text FROM actions")).scalar_one()
        assert rows[1] == "reclamation n°1 boite"
        assert rows[2] == "reclamation n°2"
        assert rows[1202] == "reclamation n°1202 oeil"
        assert len(rows) == 1202 and all(v.startswith("reclamation") for v in rows.values())
        assert action == "etalonner strasse"
        found = conn.execute(text(
            "SELECT count(*) FROM nonconformities WHERE search_text LIKE '%reclamation%'"
        )).scalar_one()
        assert found == 1202
        migrations.downgrade(conn, "tenant", "t0008")
        migrations.upgrade(conn, "tenant")
        assert conn.execute(text("SELECT search_text FROM actions")).scalar_one() == \
                "etalonner strasse"


def test_the_search_fields_migration_refolds_records_and_analyses(backend, tmp_path):
    from tenants import migrations
    from tests.test_alembic import scratch_engine

    with scratch_engine(backend, tmp_path) as engine, engine.begin() as conn:
        migrations.upgrade(conn, "tenant", "t0009_closure_rules")
        conn.execute(text(
            "INSERT INTO nonconformities (number, title, description, status, detected_on, "
            "origin, severity, cause_analysis, lot, immediate_action, quantity_unit, "
            "search_text, created_at, updated_at) VALUES (:n, :t, '', 'open', :day, "
            "'internal', 'minor', '', :lot, :cure, '', :folded, :at, :at)"),
            [{"n": n, "t": f"Réclamation n°{n}", "lot": f"LOT-É{n}" if n % 2 else "",
              "cure": "Tri à 100 %" if n == 1202 else "", "folded": f"reclamation n°{n}",
              "day": date(2026, 1, 2), "at": "2026-01-02 03:04:05"}
             for n in range(1, 1203)])  # > two batches
        ids = dict(conn.execute(text("SELECT number, id FROM nonconformities")).all())
        conn.execute(text(
            "INSERT INTO nonconformity_analyses (record_id, why_1, because_1, "
            "ishikawa_machine) VALUES (:r, 'Pourquoi ?', :because, :machine)"),
            [{"r": ids[n], "because": f"Trempe hétérogène {n}",
              "machine": "Four n°3" if n == 3 else ""} for n in range(1, 1203, 2)])
        migrations.upgrade(conn, "tenant")
        rows = dict(conn.execute(text("SELECT number, search_text FROM nonconformities")
                                 ).all())
        assert rows[1] == "reclamation n°1 lot-e1"
        assert rows[2] == "reclamation n°2"
        assert rows[1202] == "reclamation n°1202 tri a 100 %"
        assert rows[1201] == "reclamation n°1201 lot-e1201"
        analyses = dict(conn.execute(text(
            "SELECT n.number, a.search_text FROM nonconformity_analyses a "
            "JOIN nonconformities n ON n.id = a.record_id")).all())
        assert len(analyses) == 601
        assert analyses[1] == "pourquoi ? trempe heterogene 1"
        assert analyses[3] == "pourquoi ? trempe heterogene 3 four n°3"
        assert analyses[1201] == "pourquoi ? trempe heterogene 1201"
        updated = conn.execute(text("SELECT DISTINCT updated_at FROM nonconformities")).all()
        assert len(updated) == 1  # the rows' content did not change
        migrations.downgrade(conn, "tenant", "t0009_closure_rules")
        assert conn.execute(text("SELECT search_text FROM nonconformities WHERE number = 1")
                            ).scalar_one() == "reclamation n°1"
        migrations.upgrade(conn, "tenant")
        assert conn.execute(text("SELECT search_text FROM nonconformities WHERE number = 1")
                            ).scalar_one() == "reclamation n°1 lot-e1"
