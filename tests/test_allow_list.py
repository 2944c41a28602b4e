"""The takeover the hostile review did (an engineer with a read-write grant changes the admin's
e-mail, resets the password, signs in as the admin) and the tenant breakage (a write to
``tenant_identity``) are refused on both backends, by the console and by the database itself;
ordinary record edits still work and are logged with their old and new values."""

from __future__ import annotations

import re
from contextlib import contextmanager

import psycopg2
import pytest
from sqlalchemy.exc import DBAPIError

from core.db import db
from maintenance import access, grants
from maintenance.allow_list import RULES
from maintenance.models import AccessLogEntry, Grant, MaintenanceRequest, Scope, StaffUser
from maintenance.pg_roles import privileges
from tests.conftest import csrf_token, in_tenant, login, staff_login

#: How each database says no: SQLite's authorizer, PostgreSQL's privileges.
REFUSED = re.compile(r"not authorized|prohibited|permission denied")
ADMIN = grants.ClientAdmin(user_id=1, name="Admin alpha", email="admin@alpha.example")


@pytest.fixture
def rw(maint_world):
    """A read-write grant approved the real way (its PostgreSQL role from the allow-list),
    and Eve's console client."""
    app = maint_world.app
    public_id = maint_world.request("alpha", scope="read-write")
    with app.app_context():
        req = db.session.query(MaintenanceRequest).filter_by(public_id=public_id).one()
        grant_id = grants.approve(req, ADMIN).id
    client = app.test_client()
    assert staff_login(client, app, maint_world.eve).status_code == 302
    return maint_world, grant_id, client


def _user(app, email: str):
    from qalitel.users.models import User

    with in_tenant(app, "alpha") as session:
        user = session.query(User).filter_by(email=email).one()
        return user.id, user.email, user.profile.value


@contextmanager
def door_sql(world, grant_id: int):
    """Run raw SQL as the grant does: on PostgreSQL as its own role, on SQLite on the door's
    fenced connection. Yields ``execute(statement)``."""
    app = world.app
    with app.app_context():
        grant = db.session.get(Grant, grant_id)
        backend = grant.tenant.backend.value
    if backend == "postgresql":
        from tests.test_grants import as_grant

        with as_grant(app, grant_id) as conn, conn.cursor() as cur:
            def execute(statement: str) -> None:
                try:
                    cur.execute(statement)
                finally:
                    conn.rollback()
            yield execute
        return
    with app.app_context():
        grant = db.session.get(Grant, grant_id)
        eve = db.session.get(StaffUser, world.eve.id)
        with access.open_session(grant, eve) as session:
            conn = session._connection()

            def execute(statement: str) -> None:
                try:
                    conn.exec_driver_sql(statement)
                finally:
                    conn.rollback()
            yield execute


def test_the_admin_email_takeover_is_refused_at_the_console(rw):
    world, grant_id, client = rw
    app = world.app
    admin_id, email, profile = _user(app, world.tenants.a.admin_email)
    listing = client.get(f"/staff/grants/{grant_id}/tables/users")
    assert listing.status_code == 200 and email.encode() in listing.data
    assert b"password_hash" not in listing.data and b"session_token" not in listing.data
    tables = client.get(f"/staff/grants/{grant_id}/").get_data(as_text=True)
    assert "nonconformities" in tables and "alembic_version" not in tables
    url = f"/staff/grants/{grant_id}/tables/users/{admin_id}"
    page = client.get(url)
    assert page.status_code == 200
    form = page.get_data(as_text=True)
    assert 'value="email"' not in form and 'value="profile"' not in form
    token = csrf_token(client, url)
    for column, value in (("email", "eve@scoqi.example"), ("profile", "admin"),
                          ("password_hash", "x"), ("session_token", "x"),
                          ("suspended_at", "")):
        refused = client.post(url, data={"csrf_token": token, "column": column,
                                         "value": value})
        assert refused.status_code == 403, column
        assert b"cannot be changed through maintenance access" in refused.data
    assert _user(app, world.tenants.a.admin_email) == (admin_id, email, profile)
    # and the forgotten-password mail would still go to the admin, who signs in as before
    assert login(app.test_client(), "alpha", email).status_code == 302


def test_the_takeover_is_refused_by_the_database_itself(rw):
    world, grant_id, _client = rw
    with door_sql(world, grant_id) as execute:
        for statement in ("UPDATE users SET email = 'eve@scoqi.example'",
                          "UPDATE users SET profile = 'admin'",
                          "UPDATE users SET password_hash = 'x', session_token = 'y'",
                          "SELECT password_hash FROM users",
                          "SELECT session_token FROM users",
                          "INSERT INTO users (email, name, password_hash, profile, "
                          "session_token) VALUES ('e@x', 'E', 'x', 'admin', 't')",
                          "DELETE FROM users",
                          "DELETE FROM nonconformities",
                          "INSERT INTO folder_clearances (folder_id, user_id) VALUES (1, 1)",
                          "SELECT * FROM alembic_version"):
            with pytest.raises((DBAPIError, psycopg2.Error)) as refused:
                execute(statement)
            assert REFUSED.search(str(refused.value)), statement
    admin = _user(world.app, world.tenants.a.admin_email)
    assert admin[1] == world.tenants.a.admin_email and admin[2] == "admin"


def test_tenant_identity_is_untouchable(rw):
    world, grant_id, client = rw
    url = f"/staff/grants/{grant_id}/tables/tenant_identity/1"
    assert client.get(url).status_code == 200
    token = csrf_token(client, url)
    for column in ("slug", "tenant_uid"):
        refused = client.post(url, data={"csrf_token": token, "column": column,
                                         "value": "bravo"})
        assert refused.status_code == 403
    with door_sql(world, grant_id) as execute:
        for statement in ("UPDATE tenant_identity SET slug = 'bravo'",
                          "DELETE FROM tenant_identity"):
            with pytest.raises((DBAPIError, psycopg2.Error)) as refused:
                execute(statement)
            assert REFUSED.search(str(refused.value)), statement
    # the tenant still works: its users sign in
    assert login(world.app.test_client(), "alpha", world.tenants.a.admin_email).status_code \
        == 302


def test_a_record_edit_works_and_is_logged_with_old_and_new_values(rw):
    world, grant_id, client = rw
    app = world.app
    record_id = world.tenants.a.record_ids[0]
    url = f"/staff/grants/{grant_id}/tables/nonconformities/{record_id}"
    token = csrf_token(client, url)
    for column, value in (("title", "Fixed title"), ("severity", "major")):
        assert client.post(url, data={"csrf_token": token, "column": column,
                                      "value": value}).status_code == 302
    user_id = world.tenants.a.user_ids["user"]
    assert client.post(f"/staff/grants/{grant_id}/tables/users/{user_id}", data={
        "csrf_token": token, "column": "name", "value": "Renamed"}).status_code == 302
    from qalitel.records.models import NonConformity

    with in_tenant(app, "alpha") as session:
        record = session.get(NonConformity, record_id)
        assert (record.title, record.severity) == ("Fixed title", "major")
    with app.app_context():
        changes = [e.detail for e in db.session.query(AccessLogEntry)
                   .filter_by(event="change").order_by(AccessLogEntry.seq)]
    assert [(c["table"], c["column"], c["old"], c["new"]) for c in changes] == [
        ("nonconformities", "title", f"{world.marker} title", "Fixed title"),
        ("nonconformities", "severity", "minor", "major"),
        ("users", "name", f"{world.marker} user", "Renamed")]


def test_the_allow_list_never_reaches_credentials_or_identity():
    present = {table: set(rule.read) | {"password_hash", "session_token"}
               for table, rule in RULES.items()}
    present["alembic_version"] = {"version_num"}
    granted = privileges(present, Scope.READ_WRITE)
    tables = {table for _privilege, table, _columns in granted}
    assert "alembic_version" not in tables
    for privilege, table, columns in granted:
        assert "password_hash" not in columns and "session_token" not in columns
        if privilege == "UPDATE":
            assert table != "tenant_identity"
            assert not {"email", "profile", "suspended_at"} & set(columns)
    assert {p for p, *_ in granted} == {"SELECT", "UPDATE"}
    assert all(p == "SELECT" for p, *_ in privileges(present, Scope.READ))
