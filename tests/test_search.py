"""Search, on both backends: accent-, case- and ligature-insensitive both ways, through the
folded ``search_text`` columns (:mod:`qalitel.records.search`); records found by their title,
description, cause analysis and their actions' text, actions by theirs; wildcards literal;
several words all required; visibility still the only gate; the column right after every
write path (ORM writes, erasure, import, restore, the demo, the migration's backfill);
hostile queries answered, never a 500."""

from __future__ import annotations

from datetime import date

import pytest
from markupsafe import escape
from sqlalchemy import select, text

from tests.conftest import in_tenant
from tests.records_world import EXPECTED, World, build_world, client_for

RECORDS = {  # key -> (title, description, cause analysis)
    "accent": ("Réclamation client Dupré", "Boîte abîmée au déballage", ""),
    "upper": ("RECLAMATION FOURNISSEUR", "", ""),
    "ligature": ("Contrôle œil de fixation", "Ærosol percé près de la Straße", ""),
    "cause": ("Fuite hydraulique", "Goutte sous la presse", "Joint torique sous-dimensionné"),
    "via_action": ("Rayure carter", "", ""),
    "percent": ("Taux 100% atteint", "lot_42 bloqué", ""),
    "plain": ("Taux 1000 atteint", "lotX42 bloqué", ""),
    "multi": ("Moteur bruyant", "vibration au démarrage", ""),
    "moteur": ("Moteur neuf", "livré sans notice", ""),
}
ACTIONS = {  # key -> (record key or None, title, description)
    "calibration": ("via_action", "Étalonnage du banc", "Vérifier la clé dynamométrique"),
    "standalone": (None, "Former les opérateurs", "Session sur la PROCÉDURE qualité"),
    "multi": ("multi", "Changer les silentblocs", "Commande chez Müller"),
}
HIDDEN_ACTION = ("Palette confidentielle", "Inventaire des cœurs de bobine")


def _build(app, password_hash) -> World:
    from qalitel.records import service
    from qalitel.records.models import NonConformity

    world = build_world(app, password_hash)
    with app.app_context(), world.context():
        manager = world.user("manager1")
        for key, (title, description, cause) in RECORDS.items():
            record = service.create_nonconformity(manager, title, description,
                                                  cause_analysis=cause)
            world.records[key] = record.id
            world.numbers[key] = record.number
        for key, (record_key, title, description) in ACTIONS.items():
            record = (None if record_key is None
                      else service_record(NonConformity, world.records[record_key]))
            action = service.create_action(manager, title, record=record,
                                           description=description)
            world.actions[key] = action.id
        hr = service_record(NonConformity, world.records["hr"])
        hidden = service.create_action(world.user("admin"), HIDDEN_ACTION[0], record=hr,
                                       description=HIDDEN_ACTION[1])
        world.actions["hidden"] = hidden.id
    return world


def service_record(model, record_id):
    from tenants.context import tdb

    return tdb.get(model, record_id)


@pytest.fixture(scope="module")
def world(make_module_app, shared_backend, password_hash) -> World:
    """Read-only: the tests on it only search."""
    return _build(make_module_app(shared_backend), password_hash)


@pytest.fixture(scope="module")
def manager(world):
    return client_for(world, "manager1")


def _shown(html: str, titles: dict[str, str]) -> set[str]:
    return {key for key, title in titles.items() if str(escape(title)) in html}


def records_found(client, world: World, q: str, **filters: str) -> set[str]:
    response = client.get(f"/t/{world.slug}/records/", query_string={"q": q, **filters})
    assert response.status_code == 200, q
    titles = {key: RECORDS[key][0] for key in RECORDS}
    titles.update({key: f"{key} title" for key in world.records if key not in RECORDS})
    return _shown(response.get_data(as_text=True), titles)


def actions_found(client, world: World, q: str) -> set[str]:
    response = client.get(f"/t/{world.slug}/actions/", query_string={"q": q})
    assert response.status_code == 200, q
    titles = {key: title for key, (_r, title, _d) in ACTIONS.items()}
    titles["hidden"] = HIDDEN_ACTION[0]
    return _shown(response.get_data(as_text=True), titles)


# ------------------------------------------------------------------ the normaliser


@pytest.mark.parametrize(("one", "other"), [
    ("reclamation", "réclamation"), ("RÉCLAMATION", "reclamation"), ("Réclamation", "RECLAMATION"),
    ("oeil", "œil"), ("ŒIL", "oeil"), ("Ærosol", "aerosol"), ("straße", "strasse"),
    ("STRASSE", "Straße"), ("ﬁche", "fiche"), ("Ｌｏｔ", "lot"), ("Ça  va\t\n", "ca va"),
    ("ré\u200bclamation", "reclamation"), ("Dupre\u0301", "dupré"), ("Müller", "muller"),
])
def test_fold_is_the_same_both_ways(one, other):
    from core.text import fold

    assert fold(one) == fold(other)
    assert fold(fold(one)) == fold(one)


def test_fold_of_nothing_and_controls():
    from core.text import fold

    assert fold(None) == fold("") == fold(" \x00\x07 ") == ""
    assert fold("a\x00b") == "a b"


# ------------------------------------------------------------------ lists


@pytest.mark.parametrize("q", ["reclamation", "RÉCLAMATION", "Reclamation", "réclamation"])
def test_french_words_both_ways(world, manager, q):
    assert records_found(manager, world, q) == {"accent", "upper"}


@pytest.mark.parametrize(("q", "expected"), [
    ("oeil", {"ligature"}), ("ŒIL", {"ligature"}), ("aerosol", {"ligature"}),
    ("ÆROSOL", {"ligature"}), ("strasse", {"ligature"}), ("STRAßE", {"ligature"}),
    ("boite abimee", {"accent"}), ("dupre", {"accent"}),
])
def test_ligatures_and_accents_in_the_description(world, manager, q, expected):
    assert records_found(manager, world, q) == expected


def test_cause_analysis_is_searched(world, manager):
    assert records_found(manager, world, "joint torique") == {"cause"}
    assert records_found(manager, world, "SOUS-DIMENSIONNE") == {"cause"}


def test_a_record_is_found_through_its_actions(world, manager):
    assert records_found(manager, world, "etalonnage") == {"via_action"}
    assert records_found(manager, world, "cle dynamometrique") == {"via_action"}
    assert records_found(manager, world, "muller") == {"multi"}


def test_actions_are_found_by_title_and_description(world, manager):
    assert actions_found(manager, world, "ETALONNAGE") == {"calibration"}
    assert actions_found(manager, world, "procedure qualite") == {"standalone"}
    assert actions_found(manager, world, "operateurs") == {"standalone"}
    assert actions_found(manager, world, "Mueller") == set()  # no transliteration guess
    assert actions_found(manager, world, "müller") == {"multi"}


def test_actions_are_found_by_their_records_reference(world, manager):
    number = world.numbers["via_action"]
    for q in (f"NC-{number}", f"#{number}", f"nc-{number}"):
        assert "calibration" in actions_found(manager, world, q), q


def test_wildcards_are_literal(world, manager):
    assert records_found(manager, world, "100%") == {"percent"}
    assert records_found(manager, world, "lot_42") == {"percent"}
    assert records_found(manager, world, "%") == {"percent"}
    underscored = {key for key in EXPECTED["manager1"] if "_" in key}  # "by_user1 title"
    assert records_found(manager, world, "_") == {"percent", *underscored}
    assert records_found(manager, world, "lot%42") == set()
    assert records_found(manager, world, "\\") == set()
    assert actions_found(manager, world, "%") == set()


def test_several_words_must_all_match(world, manager):
    assert records_found(manager, world, "moteur") == {"multi", "moteur"}
    assert records_found(manager, world, "moteur vibration") == {"multi"}
    assert records_found(manager, world, "VIBRATION   Moteur") == {"multi"}
    assert records_found(manager, world, "moteur notice") == {"moteur"}
    assert records_found(manager, world, "moteur vibration notice") == set()
    # a word in the record, another in one of its actions: the record is one document
    assert records_found(manager, world, "bruyant silentblocs") == {"multi"}
    assert actions_found(manager, world, "silentblocs muller") == {"multi"}
    assert actions_found(manager, world, "silentblocs bruyant") == set()


def test_search_and_filters_combine(world, manager):
    assert records_found(manager, world, "moteur", status="open") == {"multi", "moteur"}
    assert records_found(manager, world, "moteur", status="closed") == set()
    assert records_found(manager, world, "title", severity="critical") == {"other"}


def test_the_reference_still_finds_its_record(world, manager):
    number = world.numbers["cause"]
    assert "cause" in records_found(manager, world, f"NC-{number}")


def test_a_record_one_cannot_see_is_never_found_through_its_action(world):
    q = "coeurs de bobine"
    for profile in ("manager1", "user1", "user2"):
        client = client_for(world, profile)
        assert "hr" not in records_found(client, world, q), profile
        assert records_found(client, world, "palette confidentielle") == set(), profile
        assert actions_found(client, world, q) == set(), profile
        hr = world.numbers["hr"]
        assert "hidden" not in actions_found(client, world, f"NC-{hr}"), profile
    admin = client_for(world, "admin")
    assert records_found(admin, world, q) == {"hr"}
    assert actions_found(admin, world, q) == {"hidden"}
    cleared = client_for(world, "manager2")  # cleared for HR through a group
    assert records_found(cleared, world, q) == {"hr"}


def test_the_csv_exports_search_the_same_way(world, manager):
    body = manager.get(f"/t/{world.slug}/records/export.csv",
                       query_string={"q": "reclamation"}).get_data(as_text=True)
    assert RECORDS["accent"][0] in body and RECORDS["upper"][0] in body
    assert RECORDS["cause"][0] not in body
    body = manager.get(f"/t/{world.slug}/actions/export.csv",
                       query_string={"q": "etalonnage"}).get_data(as_text=True)
    assert ACTIONS["calibration"][1] in body and ACTIONS["standalone"][1] not in body


@pytest.mark.parametrize("q", [
    "x" * 10_000, "réclamation" * 1000, "\x00\x01\x1b[31m", "a\x00b", "\u202e\u200b",
    "' OR 1=1 --", "%%%___\\\\", " ".join(["a"] * 500), "\u0301" * 50, "\ufdfa" * 100,
    "<script>alert(1)</script>",
])
def test_hostile_queries_are_answered(world, manager, q):
    for url in ("/records/", "/actions/", "/records/export.csv", "/actions/export.csv"):
        response = manager.get(f"/t/{world.slug}{url}", query_string={"q": q})
        assert response.status_code in (200, 400), (url, q[:20])


@pytest.mark.parametrize("raw", ["%ED%A0%80", "%FF%FE", "%C3", "%00", "%E2%80%AE%25"])
def test_undecodable_queries_are_answered(world, manager, raw):
    for url in ("/records/", "/actions/"):
        response = manager.get(f"/t/{world.slug}{url}?q={raw}")
        assert response.status_code in (200, 400), (url, raw)


def test_a_long_query_is_truncated_not_refused(world, manager):
    assert records_found(manager, world, "reclamation " + "x" * 10_000) == set()
    assert records_found(manager, world, "reclamation" + " " * 200 + "zzz") == \
        {"accent", "upper"}


# ------------------------------------------------------------------ the column's upkeep


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
    assert _stored(app, "acme", NonConformity, record_id).startswith("ecrou")


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
    from qalitel.records.models import Action, NonConformity
    from tests.test_demo import demo_app, dispose

    app = demo_app(tmp_path)  # the demo is the embedded default: SQLite
    try:
        result = app.test_cli_runner().invoke(args=["demo"])
        assert result.exit_code == 0, result.output
        with in_tenant(app, "demo") as session:
            for model in (NonConformity, Action):
                rows = session.execute(select(model)).scalars().all()
                assert rows
                for row in rows:
                    assert row.search_text and row.search_text == _fold_of(row), row.title
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


def test_the_query_splits_words_and_names_references():
    from qalitel.records.search import MAX_WORDS, reference_number, words

    assert words("  Réclamation  RECLAMATION œil ") == ["reclamation", "oeil"]
    assert len(words(" ".join(f"w{i}" for i in range(50)))) == MAX_WORDS
    assert words("\u0301\u200b") == []
    assert [reference_number(q) for q in ("NC-12", "#7", " 3 ", "nc-4", "x", "١٢")] == \
        [12, 7, 3, 4, None, None]
