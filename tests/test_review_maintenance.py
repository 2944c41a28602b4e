"""Findings of a hostile review of maintenance access.

1. A platform-database ``UPDATE`` on ``maintenance_grants`` (restoring a revoked grant,
   widening its scope, extending its window, handing it to another engineer) opened the door
   and passed ``audit verify``: the door and the verifier now take the grant's terms from the
   hash-chained log and refuse, or report, any row that says more.
2. A revocation the platform database refuses, whose marker cannot be written, ended nothing:
   the role is now cut off first.
3. A ``change`` entry was logged when the write then failed: a ``change_failed`` entry now
   follows it.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from core import clock
from core.db import db
from maintenance import access, audit, grants, revocations
from maintenance.models import Grant, MaintenanceRequest, StaffUser
from tests.test_grants import ADMIN, _admin_query
from tests.test_revocation_locked import platform_locked


def _approved(cw, *, scope: str = "read", requested: str = "read-write",
              hours: float = 1) -> int:
    public_id = cw.request(scope=requested, hours=2)
    with cw.app.app_context():
        req = db.session.query(MaintenanceRequest).filter_by(public_id=public_id).one()
        return grants.approve(req, ADMIN, hours=hours, scope=scope).id


def _tamper(app, grant_id: int, **values) -> None:
    """An ``UPDATE maintenance_grants`` by someone with write access to the platform DB."""
    with app.app_context():
        sets = ", ".join(f"{name} = :{name}" for name in values)
        db.session.execute(text(f"UPDATE maintenance_grants SET {sets} WHERE id = :id"),
                           {**values, "id": grant_id})
        db.session.commit()


def _door(app, grant_id: int, staff_id: int) -> access.MaintenanceSession:
    grant = db.session.get(Grant, grant_id)
    return access.open_session(grant, db.session.get(StaffUser, staff_id))


def _tenant_id(app, slug: str = "alpha") -> int:
    from tenants.registry import Tenant

    return db.session.execute(select(Tenant.id).where(Tenant.slug == slug)).scalar_one()


def _verdict(app) -> audit.VerifyResult:
    return audit.verify(_tenant_id(app))


def test_a_revoked_grant_restored_and_widened_by_update_is_refused_and_flagged(client_world,
                                                                               backend):
    cw, app = client_world, client_world.app
    grant_id = _approved(cw)
    with app.app_context():
        grants.revoke(db.session.get(Grant, grant_id), ADMIN, "done")
        assert _verdict(app).ok
    _tamper(app, grant_id, status="active", scope="read-write", revoked_at=None,
            ends_at=clock.now() + timedelta(days=30))
    with app.app_context():
        with pytest.raises(access.AccessDenied, match="not the one the client approved"):
            _door(app, grant_id, cw.world.eve.id)
        verdict = _verdict(app)
        assert not verdict.ok
        assert f"grant {grant_id}" in verdict.reason and "revocation" in verdict.reason
    events = [entry.event for entry in cw.log()]
    assert "session_start" not in events and "change" not in events


@pytest.mark.parametrize(("column", "forged", "why"), [
    ("scope", "read-write", "scope"),
    ("ends_at", "extended", "end of the window"),
    ("starts_at", "earlier", "start of the window"),
])
def test_a_widened_grant_is_refused_and_flagged(client_world, backend, column, forged, why):
    cw, app = client_world, client_world.app
    grant_id = _approved(cw)
    with app.app_context():
        grant = db.session.get(Grant, grant_id)
        value = {"read-write": "read-write",
                 "extended": grant.ends_at + timedelta(days=30),
                 "earlier": grant.starts_at - timedelta(days=1)}[forged]
    _tamper(app, grant_id, **{column: value})
    with app.app_context():
        with pytest.raises(access.AccessDenied, match=why):
            _door(app, grant_id, cw.world.eve.id)
        verdict = _verdict(app)
        assert not verdict.ok and why in verdict.reason


def test_a_grant_handed_to_another_engineer_is_refused_and_flagged(client_world, backend):
    cw, app = client_world, client_world.app
    grant_id = _approved(cw)
    _tamper(app, grant_id, engineer_id=cw.world.mallory.id)
    with app.app_context():
        with pytest.raises(access.AccessDenied, match="engineer"):
            _door(app, grant_id, cw.world.mallory.id)
        verdict = _verdict(app)
        assert not verdict.ok and "engineer" in verdict.reason


def test_a_grant_row_without_approval_or_with_a_forged_entry_is_refused(client_world, backend):
    cw, app = client_world, client_world.app
    public_id = cw.request(scope="read")
    with app.app_context():
        req = db.session.query(MaintenanceRequest).filter_by(public_id=public_id).one()
        now = clock.now()
        db.session.execute(text("UPDATE maintenance_requests SET status = 'approved' "
                                "WHERE id = :id"), {"id": req.id})
        grant = Grant(request_id=req.id, tenant_id=req.tenant_id, engineer_id=req.engineer_id,
                      scope=req.scope, starts_at=now, ends_at=now + timedelta(hours=1))
        db.session.add(grant)
        db.session.commit()
        grant_id = grant.id
        with pytest.raises(access.AccessDenied, match="no approval"):
            _door(app, grant_id, cw.world.eve.id)
        assert not _verdict(app).ok
        # an approval entry inserted behind the log's back: the log no longer verifies
        tail = db.session.execute(text(
            "SELECT seq, hash FROM access_log WHERE tenant_id = :t ORDER BY seq DESC LIMIT 1"),
            {"t": req.tenant_id}).one()
        from maintenance.verify_log import entry_hash
        from tenants.registry import Tenant

        fields = {"tenant_uid": db.session.get(Tenant, req.tenant_id).uid, "seq": tail.seq + 1,
                  "at": audit.format_at(now), "event": "approval", "actor_kind": "client",
                  "actor_name": "Forger", "actor_email": None, "request_public_id": public_id,
                  "detail": {"scope": "read", "starts_at": now.isoformat(),
                             "ends_at": (now + timedelta(hours=1)).isoformat()},
                  "prev_hash": tail.hash}
        db.session.execute(text(
            "INSERT INTO access_log (tenant_id, seq, at, event, actor_kind, actor_name, "
            "actor_email, request_public_id, detail, prev_hash, hash) VALUES (:tenant_id, "
            ":seq, :at, :event, :actor_kind, :actor_name, :actor_email, :request_public_id, "
            ":detail, :prev_hash, :hash)"),
            {**{k: v for k, v in fields.items() if k not in ("tenant_uid", "detail")},
             "tenant_id": req.tenant_id, "hash": entry_hash(fields),
             "detail": json.dumps(fields["detail"])})
        db.session.commit()
        with pytest.raises(access.AccessDenied, match="does not verify"):
            _door(app, grant_id, cw.world.eve.id)


def test_a_legitimate_grant_still_opens_and_verifies(client_world, backend):
    cw, app = client_world, client_world.app
    grant_id = _approved(cw, scope="read-write", hours=1.5)
    record_id = cw.world.tenants.a.record_ids[0]
    with app.app_context():
        with _door(app, grant_id, cw.world.eve.id) as session:
            assert "nonconformities" in session.tables()
            session.update_field("nonconformities", record_id, "title", "Fixed")
        assert _verdict(app).ok


def test_an_offline_revocation_without_a_marker_still_cuts_the_role_off(client_world,
                                                                        backend):
    cw, app = client_world, client_world.app
    app.config["AUDIT_LOCK_TIMEOUT_MS"] = 200
    grant_id = _approved(cw)
    settings = app.extensions["qalitel_settings"]
    blocker = settings.instance_dir / "maintenance-revocations"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("a file where the marker folder should be")
    with app.app_context():
        grant = db.session.get(Grant, grant_id)
        role = grant.role_name
        with platform_locked(app), pytest.raises(revocations.RevocationFailed) as failed:
            grants.revoke(grant, ADMIN, "stop")
        db.session.rollback()
    assert isinstance(failed.value.__cause__, OSError)
    assert failed.value.cut_off is (backend == "postgresql")
    if backend == "postgresql":
        assert _admin_query("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s",
                            (role,)) == [(False,)]
    else:
        assert role is None


def test_the_admin_is_told_plainly_when_a_revocation_cannot_be_recorded(client_world,
                                                                        backend):
    """503 with a message that leaves no doubt whether the access still works."""
    cw, app = client_world, client_world.app
    app.config["AUDIT_LOCK_TIMEOUT_MS"] = 200
    grant_id = _approved(cw)
    blocker = app.extensions["qalitel_settings"].instance_dir / "maintenance-revocations"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("a file where the marker folder should be")
    admin = cw.signed_in("admin@alpha.example")
    token = admin.get("/t/alpha/api/maintenance/requests").get_json()["csrf_token"]
    with platform_locked(app):
        response = admin.post(f"/t/alpha/api/maintenance/grants/{grant_id}/revoke", json={},
                              headers={"X-CSRFToken": token})
    assert response.status_code == 503
    body = response.get_json()
    assert body["error"] == "revocation_not_recorded"
    if backend == "postgresql":
        assert "cut off now" in body["message"]
    else:
        assert "NOT revoked" in body["message"]


def test_a_change_the_database_refuses_is_logged_as_failed(client_world, backend):
    cw, app = client_world, client_world.app
    grant_id = _approved(cw, scope="read-write")
    record_id = cw.world.tenants.a.record_ids[0]
    with app.app_context():
        with _door(app, grant_id, cw.world.eve.id) as session:
            with pytest.raises(IntegrityError):
                session.update_field("nonconformities", record_id, "severity", "apocalyptic")
            assert session.changes == 0
        assert _verdict(app).ok
    entries = cw.log()
    events = [entry.event for entry in entries]
    assert events[-3:] == ["change", "change_failed", "session_end"]
    failed = entries[-2].detail
    assert failed["table"] == "nonconformities" and failed["column"] == "severity"
    assert failed["record_id"] == str(record_id) and failed["error"] == "IntegrityError"
    assert entries[-1].detail["changes"] == 0


def test_the_console_shows_a_refused_change_and_the_log_says_so(client_world, backend):
    from tests.conftest import csrf_token

    cw = client_world
    grant_id = _approved(cw, scope="read-write")
    record_id = cw.world.tenants.a.record_ids[0]
    eve = cw.staff()
    url = f"/staff/grants/{grant_id}/tables/nonconformities/{record_id}"
    token = csrf_token(eve, url)
    refused = eve.post(url, data={"csrf_token": token, "column": "severity",
                                  "value": "apocalyptic"})
    assert 400 <= refused.status_code < 500
    assert b"refused the change" in refused.data
    events = [entry.event for entry in cw.log()]
    at = events.index("change")
    assert events[at:at + 3] == ["change", "change_failed", "session_end"]
    assert events.count("change") == 1
