"""maintenance.grants: the window rules, failed approvals undone, and on PostgreSQL the grant's
own login role with exactly the privileges of its scope."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import psycopg2
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from core.crypto import decrypt
from core.db import db
from maintenance import grants, pg_roles
from maintenance.audit import AuditWriteError
from maintenance.models import Grant, MaintenanceRequest, RequestStatus, Scope
from tests.conftest import PG_URL

PG = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)


def _request(hours: float = 2.0, scope: Scope = Scope.READ) -> MaintenanceRequest:
    return MaintenanceRequest(hours=hours, scope=scope)


@pytest.mark.parametrize(("requested", "hours", "scope", "expected"), [
    (Scope.READ_WRITE, None, None, (2.0, Scope.READ_WRITE)),
    (Scope.READ_WRITE, "1.5", "read", (1.5, Scope.READ)),
    (Scope.READ_WRITE, 2, "read-write", (2.0, Scope.READ_WRITE)),
    (Scope.READ, "0,5", "", (0.5, Scope.READ)),
    (Scope.READ, "  ", "read", (2.0, Scope.READ)),
])
def test_window_may_shrink(requested, hours, scope, expected):
    assert grants.clean_window(_request(scope=requested), hours, scope) == expected


@pytest.mark.parametrize(("requested", "hours", "scope", "message"), [
    (Scope.READ, None, "read-write", "not widened"),
    (Scope.READ, "2.01", None, "not lengthened"),
    (Scope.READ, 1e9, None, "not lengthened"),
    (Scope.READ, 0, None, "positive"),
    (Scope.READ, "-3", None, "positive"),
    (Scope.READ, "nan", None, "positive"),
    (Scope.READ, "1e999", None, "positive"),
    (Scope.READ, "two", None, "number"),
    (Scope.READ, True, None, "number"),
    (Scope.READ, [1], None, "number"),
    (Scope.READ_WRITE, None, "write", "scope"),
    (Scope.READ_WRITE, None, ["read"], "scope"),
])
def test_window_never_widens(requested, hours, scope, message):
    with pytest.raises(grants.DecisionError, match=message):
        grants.clean_window(_request(scope=requested), hours, scope)


def test_comment_rules():
    assert grants.clean_comment(None) is None and grants.clean_comment("  ") is None
    assert grants.clean_comment(" ok\r\nfine ") == "ok\nfine"
    assert grants.clean_comment("é" * grants.COMMENT_MAX) == "é" * grants.COMMENT_MAX
    for bad in ("x" * (grants.COMMENT_MAX + 1), "nul\x00", 42):
        with pytest.raises(grants.DecisionError):
            grants.clean_comment(bad)
    with pytest.raises(grants.DecisionError, match="required"):
        grants.clean_comment("", required=True)


ADMIN = grants.ClientAdmin(user_id=1, name="Admin alpha", email="admin@alpha.example")


def _approve(app, public_id: str, **kwargs) -> int:
    with app.app_context():
        req = db.session.query(MaintenanceRequest).filter_by(public_id=public_id).one()
        return grants.approve(req, ADMIN, **kwargs).id


def _grant_roles(app) -> set[str]:
    settings = app.extensions["qalitel_settings"]
    if not settings.tenant_server_url:
        return set()
    with psycopg2.connect(PG_URL) as conn, conn.cursor() as cur:
        cur.execute("SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s)",
                    (settings.pg_name_prefix + "m_",))
        names = {row[0] for row in cur.fetchall()}
    conn.close()
    return names


def test_approval_not_logged_is_not_made(maint_world):
    """When the access log cannot be written, nothing is approved (and no role is left)."""
    world, app = maint_world, maint_world.app
    public_id = world.request("alpha", scope="read-write")
    roles = _grant_roles(app)
    with app.app_context(), db.engine.begin() as conn:
        conn.execute(text("CREATE TRIGGER test_log_down BEFORE INSERT ON access_log "
                          "BEGIN SELECT RAISE(ABORT, 'log down'); END"))
    with pytest.raises(AuditWriteError):
        _approve(app, public_id, hours=1)
    with app.app_context():
        req = db.session.query(MaintenanceRequest).filter_by(public_id=public_id).one()
        assert req.status is RequestStatus.PENDING and req.decided_by_name is None
        assert db.session.query(Grant).count() == 0
        with db.engine.begin() as conn:
            conn.execute(text("DROP TRIGGER test_log_down"))
    assert _grant_roles(app) == roles
    assert _approve(app, public_id, hours=1) > 0  # the log is back: the approval goes through


def test_decisions_need_a_pending_request(maint_world):
    world, app = maint_world, maint_world.app
    public_id = world.request("alpha")
    grant_id = _approve(app, public_id)
    with app.app_context():
        req = db.session.query(MaintenanceRequest).filter_by(public_id=public_id).one()
        with pytest.raises(grants.ReplayError, match="already approved"):
            grants.approve(req, ADMIN)
        with pytest.raises(grants.ReplayError, match="already approved"):
            grants.deny(req, ADMIN, "no")
        grant = db.session.get(Grant, grant_id)
        grants.revoke(grant, ADMIN)
        with pytest.raises(grants.ReplayError, match="already revoked"):
            grants.revoke(grant, ADMIN)
        assert grants.grant_of_tenant(req.tenant_id + 1, grant_id) is None
        assert grants.grant_of_tenant(req.tenant_id, True) is None
        assert grants.request_of_tenant(req.tenant_id + 1, public_id) is None
    events = [e for e in _events(app) if e in ("approval", "revocation", "denial")]
    assert events == ["approval", "revocation"]


def _events(app) -> list[str]:
    from maintenance.models import AccessLogEntry

    with app.app_context():
        return [e.event for e in db.session.query(AccessLogEntry).order_by(AccessLogEntry.id)]


# ---------------------------------------------------------------- PostgreSQL roles


@contextmanager
def as_grant(app, grant_id: int, slug: str = "alpha") -> Iterator[psycopg2.extensions.connection]:
    """A plain connection as the grant's role to ``slug``'s database."""
    from tenants.provisioning import server_url
    from tenants.registry import Tenant

    with app.app_context():
        settings = app.extensions["qalitel_settings"]
        grant = db.session.get(Grant, grant_id)
        tenant = db.session.query(Tenant).filter_by(slug=slug).one()
        url = make_url(server_url(settings, tenant.server)).set(
            drivername="postgresql", username=grant.role_name,
            password=decrypt(settings.encryption_key, grant.role_password_encrypted),
            database=tenant.database_name)
    conn = psycopg2.connect(url.render_as_string(hide_password=False), connect_timeout=5)
    try:
        yield conn
    finally:
        conn.close()


def _role(app, grant_id: int) -> tuple[str, str, str]:
    with app.app_context():
        grant = db.session.get(Grant, grant_id)
        return grant.role_name, grant.role_password_encrypted, grant.tenant.database_name


def _admin_query(query: str, params=(), database: str | None = None) -> list[tuple]:
    from tenants import pg

    with pg.admin_connection(PG_URL, database) as conn, conn.cursor() as cur:
        cur.execute(query, params)
        return cur.fetchall()


@PG
def test_read_grant_role(maint_world):
    world, app = maint_world, maint_world.app
    grant_id = _approve(app, world.request("alpha", scope="read-write"), scope="read",
                        hours=1.5)
    role, encrypted, database = _role(app, grant_id)
    settings = app.extensions["qalitel_settings"]
    assert role.startswith(settings.pg_name_prefix + "m_")
    password = decrypt(settings.encryption_key, encrypted)
    assert password not in encrypted and len(password) >= 32
    (attrs,) = _admin_query(
        "SELECT rolcanlogin, rolconnlimit, rolvaliduntil, rolsuper, rolcreatedb, "
        "rolcreaterole, rolinherit, rolreplication, rolbypassrls FROM pg_roles "
        "WHERE rolname = %s", (role,))
    assert attrs[0] is True and attrs[1] == pg_roles.CONNECTION_LIMIT
    with app.app_context():
        ends = db.session.get(Grant, grant_id).ends_at.replace(tzinfo=UTC)
    assert abs(attrs[2] - ends) < timedelta(seconds=1)
    assert abs(ends - datetime.now(UTC) - timedelta(hours=1.5)) < timedelta(minutes=1)
    assert attrs[3:] == (False, False, False, False, False, False)
    assert _admin_query("SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner "
                        "WHERE r.rolname = %s", (role,), database) == [(0,)]
    with as_grant(app, grant_id) as conn, conn.cursor() as cur:
        cur.execute("SELECT title FROM nonconformities")
        assert any(world.marker in row[0] for row in cur.fetchall())
        cur.execute("SELECT slug FROM tenant_identity")
        assert cur.fetchone() == ("alpha",)
        for statement in ("UPDATE nonconformities SET title = 'x'",
                          "DELETE FROM users",
                          "INSERT INTO groups (name) VALUES ('intruders')",
                          "CREATE TABLE public.mine (id int)",
                          "CREATE TEMP TABLE mine (id int)"):
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cur.execute(statement)
            conn.rollback()
    with pytest.raises(psycopg2.OperationalError, match="permission denied"), \
            as_grant(app, grant_id, "bravo"):
        pass


@PG
def test_read_write_grant_role(maint_world):
    world, app = maint_world, maint_world.app
    grant_id = _approve(app, world.request("alpha", scope="read-write"))
    with as_grant(app, grant_id) as conn, conn.cursor() as cur:
        cur.execute("UPDATE nonconformities SET title = 'fixed by maintenance'")
        assert cur.rowcount == len(world.tenants.a.record_ids)
        cur.execute("UPDATE users SET name = 'Renamed' WHERE id = %s",
                    (world.tenants.a.user_ids["user"],))
        assert cur.rowcount == 1
        conn.commit()
        # The allow-list: no row added or removed, no credential, e-mail or role touched.
        for statement in ("INSERT INTO groups (name) VALUES ('support')",
                          "DELETE FROM nonconformities",
                          "UPDATE users SET email = 'eve@scoqi.example'",
                          "UPDATE users SET profile = 'admin'",
                          "UPDATE users SET password_hash = 'x'",
                          "SELECT password_hash FROM users",
                          "SELECT session_token FROM users",
                          "SELECT * FROM users",
                          "UPDATE nonconformities SET folder_id = NULL",
                          "SELECT * FROM alembic_version",
                          "UPDATE tenant_identity SET slug = 'bravo'",
                          "DELETE FROM alembic_version",
                          "CREATE TABLE public.mine (id int)",
                          "ALTER TABLE users ADD COLUMN evil text",
                          "DROP TABLE groups"):
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cur.execute(statement)
            conn.rollback()


@PG
def test_connection_limit_and_sweep(maint_world):
    from tenants.provisioning import sweep

    world, app = maint_world, maint_world.app
    grant_id = _approve(app, world.request("alpha"))
    role = _role(app, grant_id)[0]
    with as_grant(app, grant_id), as_grant(app, grant_id), \
            pytest.raises(psycopg2.OperationalError, match="too many connections"), \
            as_grant(app, grant_id):
        pass
    with app.app_context():
        removed = sweep(app.extensions["qalitel_settings"], older_than_s=0)
    assert f"role:{role}" not in removed
    assert _admin_query("SELECT count(*) FROM pg_roles WHERE rolname = %s", (role,)) == [(1,)]
    with as_grant(app, grant_id) as conn, conn.cursor() as cur:
        cur.execute("SELECT 1")


def test_decisions_on_either_platform_database(platform_app, password_hash, english_clients):
    """The platform database itself on each backend (claims, log, page)."""
    from maintenance.models import GrantStatus, StaffUser
    from maintenance.requests import create_request
    from tests.conftest import login, make_staff, provision

    app = platform_app
    provision(app, "alpha", password_hash)
    eve = make_staff(app)
    with app.app_context():
        staff = db.session.get(StaffUser, eve.id)
        approved = create_request("alpha", staff, "check", scope="read-write", hours=3)
        denied = create_request("alpha", staff, "check again")
        grant = grants.approve(approved, ADMIN, hours="2.5", scope="read", comment="ok")
        assert (grant.scope, grant.status) == (Scope.READ, GrantStatus.ACTIVE)
        grants.deny(denied, ADMIN, "no")
        with pytest.raises(grants.ReplayError):
            grants.approve(denied, ADMIN)
        grant_id = grant.id
    client = app.test_client()
    assert login(client, "alpha", "admin@alpha.example").status_code == 302
    page = client.get("/t/alpha/maintenance/").get_data(as_text=True)
    assert f'id="grant-{grant_id}"' in page and '<time datetime="' in page and "UTC" not in page
    with app.app_context():
        grants.revoke(db.session.get(Grant, grant_id), ADMIN)
        assert db.session.get(Grant, grant_id).status is GrantStatus.REVOKED
    assert [e for e in _events(app) if e not in ("request",)] == [
        "approval", "denial", "revocation"]
