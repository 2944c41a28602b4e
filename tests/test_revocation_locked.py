"""A revocation while the SQLite platform database is locked (another connection holds
``BEGIN EXCLUSIVE``) ends the access anyway: the door refuses the grant at once (and, for a
PostgreSQL tenant, its role loses LOGIN); the revocation is stored and logged as soon as the
lock is gone. Before the fix: a 500, and the grant stayed active."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.engine import make_url

from core.db import db
from maintenance import audit, revocations
from maintenance.models import AccessLogEntry, Grant, GrantStatus, MaintenanceRequest
from tests.test_grants import ADMIN, _admin_query
from tests.test_maintenance_api import API, _csrf, _post


@contextmanager
def platform_locked(app) -> Iterator[None]:
    path = make_url(app.config["SQLALCHEMY_DATABASE_URI"]).database
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def _approved(cw) -> int:
    from maintenance import grants

    public_id = cw.request(scope="read-write")
    with cw.app.app_context():
        req = db.session.query(MaintenanceRequest).filter_by(public_id=public_id).one()
        return grants.approve(req, ADMIN).id


def test_a_revocation_during_a_lock_still_ends_the_access(client_world, backend):
    cw, app = client_world, client_world.app
    app.config["AUDIT_LOCK_TIMEOUT_MS"] = 200
    grant_id = _approved(cw)
    eve = cw.staff()
    admin = cw.signed_in("admin@alpha.example")
    token = _csrf(admin)
    assert eve.get(f"/staff/grants/{grant_id}/").status_code == 200
    with app.app_context():
        role = db.session.get(Grant, grant_id).role_name

    with platform_locked(app):
        answer = _post(admin, f"{API}/grants/{grant_id}/revoke", {"comment": "stop"}, token)
        assert answer.status_code == 202, answer.get_data(as_text=True)
        body = answer.get_json()
        assert body["pending"] is True and body["grant"]["state"] == "revoked"
        assert "cut off now" in body["message"]
        refused = eve.get(f"/staff/grants/{grant_id}/tables/nonconformities")
        assert refused.status_code == 403
        assert cw.world.marker.encode() not in refused.data
        if backend == "postgresql":
            assert _admin_query("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s",
                                (role,)) == [(False,)]
        with app.app_context():
            assert db.session.get(Grant, grant_id).status is GrantStatus.ACTIVE  # not stored
            assert revocations.pending(grant_id)

    # The lock is gone: the next page applying expiries stores and logs the revocation.
    assert admin.get("/t/alpha/maintenance/").status_code == 200
    with app.app_context():
        grant = db.session.get(Grant, grant_id)
        assert grant.status is GrantStatus.REVOKED and grant.revoked_by_name == ADMIN.name
        assert not revocations.pending(grant_id)
        last = db.session.query(AccessLogEntry).order_by(AccessLogEntry.id.desc()).first()
        assert last.event == "revocation" and last.detail["logged_late"] is True
        assert last.detail["comment"] == "stop"
        assert audit.verify(grant.tenant_id).ok
    assert eve.get(f"/staff/grants/{grant_id}/").status_code == 403


def test_a_revocation_logged_late_is_unverified_until_logged(client_world):
    """The claim stored, the log down: the grant ends, verification says the revocation is
    not logged yet, and the catch-up logs it."""
    cw, app = client_world, client_world.app
    grant_id = _approved(cw)
    admin = cw.signed_in("admin@alpha.example")
    token = _csrf(admin)
    with app.app_context(), db.engine.begin() as conn:
        conn.execute(text("CREATE TRIGGER test_log_down BEFORE INSERT ON access_log "
                          "BEGIN SELECT RAISE(ABORT, 'log down'); END"))
    answer = _post(admin, f"{API}/grants/{grant_id}/revoke", {}, token)
    assert answer.status_code == 202 and answer.get_json()["grant"]["state"] == "revoked"
    with app.app_context():
        grant = db.session.get(Grant, grant_id)
        assert grant.status is GrantStatus.REVOKED
        result = audit.verify(grant.tenant_id)
        assert not result.ok and "no 'revocation' entry" in result.reason
    with app.app_context(), db.engine.begin() as conn:
        conn.execute(text("DROP TRIGGER test_log_down"))
    assert admin.get("/t/alpha/maintenance/").status_code == 200
    with app.app_context():
        assert audit.verify(db.session.get(Grant, grant_id).tenant_id).ok
