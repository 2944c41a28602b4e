"""Erasure on both backends: the user asks, an admin decides, the person becomes a
pseudonymous tombstone; the ledger survives a backup restore; bad input is refused."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.backup_world import make_world
from tests.conftest import csrf_token, in_tenant, login
from tests.my_data_world import build_rich_world, client_for, scan_for


@pytest.fixture
def world(app, password_hash):
    return build_rich_world(app, password_hash)


def _ask(client, slug):
    token = csrf_token(client, f"/t/{slug}/my-data")
    return client.post(f"/t/{slug}/my-data/erasure", data={"csrf_token": token})


def _pending_id(world, key):
    from qalitel.my_data.models import ErasureRequest
    from tenants.context import tdb

    with world.app.app_context(), world.context():
        return tdb.execute(select(ErasureRequest.id).where(
            ErasureRequest.user_id == world.users[key])).scalar_one()


def test_request_then_approval_erases_the_person(world):
    from core.db import db
    from qalitel.my_data.ledger import Erasure
    from qalitel.records.models import NonConformity, StatusChange
    from tenants.context import tdb

    user = client_for(world, "user1")
    assert _ask(user, world.slug).status_code == 302
    assert _ask(user, world.slug).status_code == 409  # a second request while one is pending
    admin = client_for(world, "admin")
    listing = admin.get(f"/t/{world.slug}/erasure-requests/").get_data(as_text=True)
    assert world.emails["user1"] in listing
    request_id = _pending_id(world, "user1")
    token = csrf_token(admin, f"/t/{world.slug}/erasure-requests/")
    done = admin.post(f"/t/{world.slug}/erasure-requests/{request_id}/approve",
                      data={"csrf_token": token})
    assert done.status_code == 302
    with world.app.app_context(), world.context():
        person = world.user("user1")
        assert person.name.startswith("Former user ") and len(person.name) == 16
        assert person.email.endswith("@erased.invalid") and person.is_suspended
        mine = tdb.get(NonConformity, world.records["by_user1"])
        assert mine.created_by_id == person.id  # foreign keys kept to the tombstone
        other = tdb.get(NonConformity, world.records["other"])
        assert "User acme" not in other.description
        assert "user@acme.example" not in other.description
        assert person.name in other.description
        comments = [c.comment for c in tdb.execute(select(StatusChange)).scalars()]
        assert not any("User acme" in c for c in comments)
        # nowhere in the tenant is the old name or address still written
        assert scan_for(tdb, 0, "User acme", world.emails["user1"]) == {}
        [entry] = db.session.execute(select(Erasure)).scalars().all()
        assert entry.tenant_user_id == person.id and person.name.endswith(entry.pseudonym)
    # the person can no longer sign in, and their session has ended
    assert user.get(f"/t/{world.slug}/my-data").status_code == 302
    again = world.app.test_client()
    assert login(again, world.slug, world.emails["user1"]).status_code == 401
    with world.app.app_context(), world.context():
        tombstone = world.user("user1").email
    assert login(again, world.slug, tombstone).status_code == 400  # not an address at all


def test_refusal_keeps_the_account_and_says_why(world):
    user = client_for(world, "user2")
    assert _ask(user, world.slug).status_code == 302
    admin = client_for(world, "admin")
    token = csrf_token(admin, f"/t/{world.slug}/erasure-requests/")
    request_id = _pending_id(world, "user2")
    url = f"/t/{world.slug}/erasure-requests/{request_id}/refuse"
    assert admin.post(url, data={"csrf_token": token,
                                 "reason": "bad\x00reason"}).status_code == 400
    assert admin.post(url, data={"csrf_token": token,
                                 "reason": "Open audit"}).status_code == 302
    page = user.get(f"/t/{world.slug}/my-data").get_data(as_text=True)
    assert "Open audit" in page
    with world.app.app_context(), world.context():
        assert world.user("user2").email == world.emails["user2"]


def test_the_last_admin_cannot_be_erased(world):
    from qalitel.my_data.models import ErasureRequest, ErasureState
    from tenants.context import tdb

    admin = client_for(world, "admin")
    assert _ask(admin, world.slug).status_code == 302
    request_id = _pending_id(world, "admin")
    token = csrf_token(admin, f"/t/{world.slug}/erasure-requests/")
    refused = admin.post(f"/t/{world.slug}/erasure-requests/{request_id}/approve",
                         data={"csrf_token": token})
    assert refused.status_code == 409
    assert "last active administrator" in refused.get_data(as_text=True)
    with world.app.app_context(), world.context():
        assert world.user("admin").email == world.emails["admin"]
        assert tdb.get(ErasureRequest, request_id).state is ErasureState.PENDING


def test_forged_ids_and_missing_csrf(world):
    user1 = client_for(world, "user1")
    assert _ask(client_for(world, "user2"), world.slug).status_code == 302
    other = _pending_id(world, "user2")
    token = csrf_token(user1, f"/t/{world.slug}/my-data")
    base = f"/t/{world.slug}/erasure-requests"
    # a user cannot decide, nor ask for somebody else
    assert user1.post(f"{base}/{other}/approve", data={"csrf_token": token}).status_code == 403
    assert user1.get(f"{base}/").status_code == 403
    assert user1.post(f"/t/{world.slug}/my-data/erasure",
                      data={"csrf_token": token, "user_id": world.users["manager1"]}
                      ).status_code == 302
    admin = client_for(world, "admin")
    admin_token = csrf_token(admin, f"{base}/")
    assert admin.post(f"{base}/999999/approve", data={"csrf_token": admin_token}
                      ).status_code == 404
    assert admin.post(f"{base}/{other}/approve").status_code == 400  # no CSRF token
    assert user1.post(f"/t/{world.slug}/my-data/erasure").status_code == 400
    from qalitel.my_data.models import ErasureRequest
    from tenants.context import tdb

    with world.app.app_context(), world.context():
        asked = set(tdb.execute(select(ErasureRequest.user_id)).scalars())
        assert asked == {world.users["user1"], world.users["user2"]}
        assert world.user("user2").email == world.emails["user2"]


def test_outcome_is_mailed_in_the_users_language(make_app, backend, smtp_server,
                                                 password_hash):
    app = make_app(backend, **smtp_server.settings())
    world = build_rich_world(app, password_hash)
    assert _ask(client_for(world, "user1"), world.slug).status_code == 302
    with app.app_context(), world.context():
        world.user("user1").locale = "fr"  # as if their last sign-in was in French
    admin = client_for(world, "admin")
    token = csrf_token(admin, f"/t/{world.slug}/erasure-requests/")
    request_id = _pending_id(world, "user1")
    assert admin.post(f"/t/{world.slug}/erasure-requests/{request_id}/approve",
                      data={"csrf_token": token}).status_code == 302
    [mail] = smtp_server.wait_for(1)
    assert world.emails["user1"] in mail.rcpt_tos
    assert "supprimé" in mail.body


def test_an_erasure_survives_the_restore_of_an_older_backup(make_app, backend, tmp_path,
                                                            password_hash):
    from core.db import db
    from qalitel.my_data import requests as erasures
    from qalitel.transaction import unit_of_work
    from qalitel.users.models import User
    from tenants.context import tdb, tenant_context
    from tenants.engines import TenantInfo
    from tenants.registry import Tenant

    world = make_world(make_app, backend, tmp_path, password_hash)
    assert world.run("backup", "run", "acme").exit_code == 0
    with world.app.app_context():
        row = db.session.query(Tenant).filter_by(slug="acme").one()
        with tenant_context(TenantInfo.from_row(row)), unit_of_work():
            person = tdb.execute(select(User).filter_by(email="user@acme.example")).scalar_one()
            admin = tdb.execute(select(User).filter_by(email="admin@acme.example")).scalar_one()
            erasures.decide(erasures.request_erasure(person), admin, True)
        db.session.commit()
    for args in (("1",), ("1", "--as", "acme-copy")):
        result = world.run("backup", "restore", "acme", *args)
        assert result.exit_code == 0, result.output
        slug = "acme-copy" if "--as" in args else "acme"
        with in_tenant(world.app, slug) as session:
            emails = {u.email for u in session.query(User)}
            names = {u.name for u in session.query(User)}
        assert "user@acme.example" not in emails
        assert "User acme" not in names
        assert any(e.endswith("@erased.invalid") for e in emails)


def test_pseudonyms_read_in_the_readers_language(world):
    from qalitel.my_data.erasure import erase
    from tenants.context import tdb

    with world.app.app_context(), world.context():
        erase(world.user("user1"), "7F3A")
        tdb.flush()
    admin = client_for(world, "admin")
    url = f"/t/{world.slug}/records/{world.records['other']}"
    english = admin.get(url).get_data(as_text=True)
    assert "Former user 7F3A" in english and "User acme" not in english
    admin.environ_base["HTTP_ACCEPT_LANGUAGE"] = "fr"
    users = admin.get(f"/t/{world.slug}/users/").get_data(as_text=True)
    assert "Ancien utilisateur 7F3A" in users


def test_pages_read_in_french(world):
    user = client_for(world, "user1")
    assert _ask(user, world.slug).status_code == 302
    user.environ_base["HTTP_ACCEPT_LANGUAGE"] = "fr"
    page = user.get(f"/t/{world.slug}/my-data").get_data(as_text=True)
    assert "Mes données" in page and "Modifié par votre administrateur" in page
    admin = client_for(world, "admin")
    admin.environ_base["HTTP_ACCEPT_LANGUAGE"] = "fr"
    listing = admin.get(f"/t/{world.slug}/erasure-requests/").get_data(as_text=True)
    assert "Demandes de suppression" in listing and world.emails["user1"] in listing
