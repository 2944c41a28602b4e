"""Mentions of a person, on both backends: the personal export holds only rows the person may
see (whole words, names of three characters or more), the erasure rewrites only free text,
whole words, former names included, and fails cleanly; the erasure ledger names people, not
reusable ids (restore, import); a client admin's decisions are pseudonymised too."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from sqlalchemy import select

from tests.backup_world import make_world
from tests.conftest import csrf_token, in_tenant, login
from tests.export_world import run
from tests.my_data_world import build_rich_world, client_for, scan_for

CONFIDENTIAL = {"hr title", "legal title", "legal_user2 title"}  # user1 is not cleared


@pytest.fixture
def world(app, password_hash):
    return build_rich_world(app, password_hash)


def _erase(world, key, admin_key="admin"):
    from core.db import db
    from qalitel.my_data import requests as erasures
    from qalitel.transaction import unit_of_work

    with world.app.app_context():
        with world.context(), unit_of_work():
            erasures.decide(erasures.request_erasure(world.user(key)), world.user(admin_key),
                            True)
        db.session.commit()


def _rename(world, key, name):
    from qalitel.users import service

    with world.app.app_context(), world.context():
        service.rename(world.user(key), name)


def test_mentions_are_whole_words_and_names_have_a_minimum_length():
    from qalitel.my_data.mentions import needles, pattern, replace_whole_words

    assert needles(["e", "Ed", " Eva "], ["ed@x.example"]) == ["ed@x.example", "Eva"]
    regex = pattern(["Ann Lee", "ann@acme.example"])
    assert regex.search("Called ANN LEE.") and regex.search("mail Ann@Acme.example, then")
    for text in ("Joann Leed", "joann@acme.example", "ann@acme.example.org", "xAnn Lee"):
        assert not regex.search(text), text
    assert replace_whole_words("Edge by Ann Lee; ann lee.pdf", {"Ann Lee": "F 1"}) == \
        "Edge by F 1; F 1.pdf"


@pytest.mark.parametrize("name", ["e", "Ed"])
def test_a_short_name_downloads_nothing_it_may_not_see(world, name):
    user = client_for(world, "user1")
    token = csrf_token(user, f"/t/{world.slug}/my-data")
    assert user.post(f"/t/{world.slug}/my-data/profile",
                     data={"csrf_token": token, "name": name, "locale": "en"}).status_code == 302
    assert user.post(f"/t/{world.slug}/my-data/download",
                     data={"csrf_token": token}).status_code == 302  # queued
    from qalitel.exports.jobs import process_pending_exports

    [job_id] = process_pending_exports(world.app)
    got = user.get(f"/t/{world.slug}/my-data/exports/{job_id}")
    assert got.status_code == 200
    data = json.loads(zipfile.ZipFile(io.BytesIO(got.data)).read("data.json"))
    mine = world.users["user1"]
    titles = {r["title"] for r in data["nonconformities"]}
    assert not CONFIDENTIAL & titles and "other title" not in titles
    assert [u["id"] for u in data["users"]] == [mine]
    # history and comments: only the person's own, or in records they may read
    readable = {r["id"] for r in data["nonconformities"]}
    for row in data["nonconformity_history"] + data["nonconformity_status_changes"]:
        assert row["record_id"] in readable or mine in (row.get("user_id"),
                                                        row.get("changed_by_id"))
    for row in data["action_history"]:
        assert row["user_id"] == mine or row["action_id"] in {a["id"] for a in data["actions"]}


def test_a_mention_in_a_record_out_of_sight_is_not_exported(world):
    from qalitel.my_data.collect import personal_data
    from qalitel.records.models import NonConformity
    from tenants.context import tdb

    with world.app.app_context(), world.context():
        rec = tdb.get(NonConformity, world.records["hr"])
        rec.description = "Dismissal of User acme discussed"
        seen = tdb.get(NonConformity, world.records["by_user1"])
        seen.description = "Seen by USER ACME and by user@ACME.example"
        data = personal_data(tdb, world.users["user1"])
    titles = {r["title"] for r in data["nonconformities"]}
    assert "hr title" not in titles and "by_user1 title" in titles


def test_erasing_a_short_name_leaves_other_words_and_codes_alone(world):
    from qalitel.records.files.models import Attachment
    from qalitel.records.models import NonConformity
    from tenants.context import tdb

    with world.app.app_context(), world.context():
        world.user("user1").name = "e"
        rec = tdb.get(NonConformity, world.records["legal"])
        rec.title = "Edge crack on weld"
        rec.description = "Edited by the quality team"
        before = {a.id: (a.sha256, a.kind, a.content_type)
                  for a in tdb.execute(select(Attachment)).scalars()}
        statuses = {r.id: (r.status, r.severity, r.origin)
                    for r in tdb.execute(select(NonConformity)).scalars()}
    _erase(world, "user1")
    with world.app.app_context(), world.context():
        rec = tdb.get(NonConformity, world.records["legal"])
        assert (rec.title, rec.description) == ("Edge crack on weld", "Edited by the quality team")
        assert before == {a.id: (a.sha256, a.kind, a.content_type)
                          for a in tdb.execute(select(Attachment)).scalars()}
        assert statuses == {r.id: (r.status, r.severity, r.origin)
                            for r in tdb.execute(select(NonConformity)).scalars()}
        assert world.user("user1").name.startswith("Former user ")
        # the address, always looked for, is gone from the free text
        assert scan_for(tdb, 0, "e" * 40, world.emails["user1"]) == {}
    admin = client_for(world, "admin")
    assert admin.get(f"/t/{world.slug}/records/").status_code == 200


def test_erasure_is_case_insensitive(world):
    from qalitel.records.models import NonConformity
    from tenants.context import tdb

    with world.app.app_context(), world.context():
        rec = tdb.get(NonConformity, world.records["other"])
        rec.description = "Called USER ACME; mail sent to User@Acme.example"
        name, email = world.user("user1").name, world.user("user1").email
    _erase(world, "user1")
    with world.app.app_context(), world.context():
        assert scan_for(tdb, 0, name, email) == {}
        rec = tdb.get(NonConformity, world.records["other"])
        assert rec.description.startswith("Called Former user ")


def test_former_names_are_exported_and_erased(world):
    from qalitel.my_data.collect import personal_data
    from tenants.context import tdb

    _rename(world, "user1", "Marie Dupont")  # the My data rectification
    with world.app.app_context(), world.context():
        data = personal_data(tdb, world.users["user1"])
        texts = json.dumps(data["nonconformity_status_changes"] + data["action_history"])
        assert "User acme" in texts  # rows naming the former name are the person's too
    _erase(world, "user1")
    with world.app.app_context(), world.context():
        assert scan_for(tdb, 0, "User acme", "nobody@x.invalid") == {}
        assert scan_for(tdb, 0, "Marie Dupont", "nobody@x.invalid") == {}


def test_a_failing_erasure_is_a_clear_refusal_and_changes_nothing(world):
    from core import config
    from qalitel.my_data.erasure import new_code, pseudonym_name
    from qalitel.my_data.models import ErasureRequest, ErasureState
    from qalitel.users.models import Group
    from tenants.context import tdb

    with world.app.app_context(), world.context():
        code = new_code(config.settings().secret_key, world.handle.uid, world.users["user1"])
        # the erasure would rename the first group into the second: a unique violation
        tdb.add(Group(name="Team of User acme"))
        tdb.add(Group(name=f"Team of {pseudonym_name(code)}"))
    user = client_for(world, "user1")
    token = csrf_token(user, f"/t/{world.slug}/my-data")
    assert user.post(f"/t/{world.slug}/my-data/erasure",
                     data={"csrf_token": token}).status_code == 302
    with world.app.app_context(), world.context():
        rid = tdb.execute(select(ErasureRequest.id)).scalar_one()
    admin = client_for(world, "admin")
    token = csrf_token(admin, f"/t/{world.slug}/erasure-requests/")
    done = admin.post(f"/t/{world.slug}/erasure-requests/{rid}/approve",
                      data={"csrf_token": token})
    assert done.status_code == 409
    assert "nothing was changed" in done.get_data(as_text=True)
    with world.app.app_context(), world.context():
        assert world.user("user1").name == "User acme"
        assert tdb.get(ErasureRequest, rid).state is ErasureState.PENDING
        assert tdb.execute(select(Group.id).where(Group.name == "Team of User acme")).first()


def test_approving_the_erasure_of_a_user_named_e_works(world):
    from qalitel.records.models import NonConformity
    from tenants.context import tdb

    user = client_for(world, "user1")
    token = csrf_token(user, f"/t/{world.slug}/my-data")
    assert user.post(f"/t/{world.slug}/my-data/profile",
                     data={"csrf_token": token, "name": "e", "locale": "en"}).status_code == 302
    assert user.post(f"/t/{world.slug}/my-data/erasure",
                     data={"csrf_token": token}).status_code == 302
    from qalitel.my_data.models import ErasureRequest
    with world.app.app_context(), world.context():
        rid = tdb.execute(select(ErasureRequest.id)).scalar_one()
    admin = client_for(world, "admin")
    token = csrf_token(admin, f"/t/{world.slug}/erasure-requests/")
    done = admin.post(f"/t/{world.slug}/erasure-requests/{rid}/approve",
                      data={"csrf_token": token})
    assert done.status_code == 302
    with world.app.app_context(), world.context():
        assert tdb.get(NonConformity, world.records["hr"]).title == "hr title"
        assert world.user("user1").is_suspended


def test_the_ledger_spares_a_new_user_who_reuses_an_erased_id(make_app, backend, tmp_path,
                                                              password_hash):
    from core.db import db
    from qalitel.my_data import requests as erasures
    from qalitel.transaction import unit_of_work
    from qalitel.users.models import Profile, User
    from tenants.context import tdb, tenant_context
    from tenants.engines import TenantInfo
    from tenants.registry import Tenant

    world = make_world(make_app, backend, tmp_path, password_hash)
    world.app.config["MAIL_BACKGROUND"] = False
    assert world.run("backup", "run", "acme").exit_code == 0  # backup 1: no Alice yet

    def in_acme():
        row = db.session.query(Tenant).filter_by(slug="acme").one()
        return tenant_context(TenantInfo.from_row(row))

    def add(email, name):
        with in_acme(), unit_of_work():
            person = User(email=email, name=name, profile=Profile.USER,
                          password_hash=password_hash)
            tdb.add(person)
            tdb.flush()
            return person.id

    with world.app.app_context():
        alice_id = add("alice@acme.example", "Alice Martin")
        with in_acme(), unit_of_work():
            admin = tdb.execute(select(User).filter_by(email="admin@acme.example")).scalar_one()
            erasures.decide(erasures.request_erasure(tdb.get(User, alice_id)), admin, True)
        db.session.commit()
    assert world.run("backup", "restore", "acme", "1").exit_code == 0
    with world.app.app_context():
        bob_id = add("bob@acme.example", "Bob Durand")
        db.session.commit()
    assert bob_id == alice_id  # the id is reused
    assert world.run("backup", "run", "acme").exit_code == 0  # backup 2: holds Bob
    restored = world.run("backup", "restore", "acme", "2")
    assert restored.exit_code == 0, restored.output
    with in_tenant(world.app, "acme") as session:
        bob = session.get(User, bob_id)
        assert (bob.email, bob.name, bob.suspended_at) == ("bob@acme.example", "Bob Durand",
                                                           None)
        assert not session.query(User).filter_by(email="alice@acme.example").count()


def test_importing_an_export_taken_before_an_erasure_erases_again(world, tmp_path):
    from qalitel.users.models import User

    archive = tmp_path / "before.zip"
    exported = run(world.app, "tenants", "export", world.slug, "--output", archive,
                   "--reason", "Migration to another host")
    assert exported.exit_code == 0, exported.output
    _erase(world, "user1")
    result = run(world.app, "tenants", "import", archive, "--as", "acme-back")
    assert result.exit_code == 0, result.output
    with in_tenant(world.app, "acme-back") as session:
        person = session.get(User, world.users["user1"])
        emails = {u.email for u in session.query(User)}
        assert person.name.startswith("Former user ") and person.is_suspended
    assert world.emails["user1"] not in emails
    assert world.emails["manager1"] in emails  # the others are untouched


def test_a_client_admins_decisions_are_pseudonymised_on_erasure(world):
    from core.db import db
    from maintenance.models import MaintenanceRequest, StaffUser
    from maintenance.requests import create_request
    from qalitel.users.models import Profile
    from tests.conftest import grant_for_test, make_staff

    eve = make_staff(world.app)
    with world.app.app_context():
        public = create_request(world.slug, db.session.get(StaffUser, eve.id),
                                "Investigate ticket #42").public_id
    with world.app.app_context(), world.context():
        world.user("manager1").profile = Profile.ADMIN  # so two admins remain
        name, email = world.user("admin").name, world.user("admin").email
    grant_for_test(world.app, public, approver=(name, email))
    _erase(world, "admin", admin_key="manager1")
    with world.app.app_context():
        request = db.session.execute(select(MaintenanceRequest).filter_by(
            public_id=public)).scalar_one()
        assert request.decided_by_name.startswith("Former user ")
        assert request.decided_by_email.endswith("@erased.invalid")
    assert login(world.app.test_client(), world.slug, email).status_code == 401


def test_t0008_gives_existing_users_a_uid_an_older_backup_gets_again(backend, tmp_path):
    """Users from before ``users.uid``: a value from their id and creation time, the same
    when an older copy of the rows is upgraded again (so the ledger still knows them)."""
    from sqlalchemy import text

    from tenants import migrations
    from tests.test_alembic import scratch_engine

    with scratch_engine(backend, tmp_path) as engine:
        with engine.begin() as conn:
            migrations.upgrade(conn, "tenant", "t0007")
            for n in (1, 2):
                conn.execute(text(
                    "INSERT INTO users (email, name, password_hash, profile, session_token, "
                    "created_at, updated_at) VALUES (:e, 'N', 'x', 'user', :t, "
                    "'2026-01-02 03:04:05', '2026-01-02 03:04:05')"),
                    {"e": f"u{n}@x.example", "t": f"token{n}"})
        uids = []
        for _ in range(2):
            with engine.begin() as conn:
                migrations.upgrade(conn, "tenant")
                uids.append(conn.execute(text("SELECT id, uid FROM users ORDER BY id")).all())
                migrations.downgrade(conn, "tenant", "t0007")
    assert uids[0] == uids[1] and len({uid for _, uid in uids[0]}) == 2
    assert all(uid.startswith("legacy-") for _, uid in uids[0])


def test_an_import_the_ledger_cannot_be_applied_to_is_refused_whole(world, tmp_path):
    from core import config
    from qalitel.my_data.erasure import new_code, pseudonym_name
    from qalitel.users.models import Group
    from tenants.context import tdb
    from tests.export_world import slugs

    with world.app.app_context(), world.context():
        code = new_code(config.settings().secret_key, world.handle.uid, world.users["user1"])
        tdb.add(Group(name="Team of User acme"))
        tdb.add(Group(name=f"Team of {pseudonym_name(code)}"))
    archive = tmp_path / "before.zip"
    exported = run(world.app, "tenants", "export", world.slug, "--output", archive,
                   "--reason", "Migration to another host")
    assert exported.exit_code == 0, exported.output
    with world.app.app_context(), world.context():
        tdb.delete(tdb.execute(select(Group).filter_by(name="Team of User acme")).scalar_one())
    _erase(world, "user1")
    result = run(world.app, "tenants", "import", archive, "--as", "acme-back")
    assert result.exit_code == 2, result.output
    assert "erasure ledger could not be applied" in result.output
    assert "acme-back" not in slugs(world.app)
