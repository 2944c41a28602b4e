"""Erasing or rolling back a tenant's access log, as the hostile review did, on both platform
backends: ordinary statements are refused; what needs DDL, a forged purge record or an old
head put back is what `qalitel audit verify` and the client's log page report. A legitimate
purge (tenant destroyed) verifies as a purge."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from flask import Flask
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.exc import DBAPIError

from core.db import db
from maintenance import audit, grants, witness
from maintenance.audit_verify import verify_purges
from maintenance.models import (
    AccessLogHead,
    AccessLogPurge,
    Grant,
    MaintenanceRequest,
    StaffUser,
)
from maintenance.requests import create_request
from tenants.provisioning import destroy_tenant
from tenants.registry import Tenant
from tests.conftest import login, make_staff, provision
from tests.test_audit_tamper import attacker, command_verdicts

HEADS = AccessLogHead.__table__
PURGES = AccessLogPurge.__table__
ADMIN = grants.ClientAdmin(user_id=1, name="Admin alpha", email="admin@alpha.example")


@dataclass
class World:
    app: Flask
    tenant_id: int
    uid: str
    requests: list[str]


@pytest.fixture
def world(platform_app, password_hash, english_clients) -> World:
    """alpha (a real tenant) with a denied request and an approved, then revoked, one; bravo
    untouched."""
    app = platform_app
    alpha = provision(app, "alpha", password_hash, records=0)
    provision(app, "bravo", password_hash, records=0)
    eve = make_staff(app)
    with app.app_context():
        engineer = db.session.get(StaffUser, eve.id)
        first = create_request("alpha", engineer, "Slow page", scope="read")
        grants.deny(first, ADMIN, "not now")
        second = create_request("alpha", engineer, "Broken record", scope="read")
        grant = grants.approve(second, ADMIN)
        grants.revoke(grant, ADMIN)
        tenant_id = db.session.execute(select(Tenant.id).filter_by(slug="alpha")).scalar_one()
        assert audit.verify(tenant_id).ok
        assert audit.head(tenant_id).count == 5
        public_ids = [first.public_id, second.public_id]
    return World(app, tenant_id, alpha.uid, public_ids)


def verdict(world: World) -> audit.VerifyResult:
    with world.app.app_context():
        return audit.verify(world.tenant_id)


def log_page_status(world: World) -> str:
    client = world.app.test_client()
    assert login(client, "alpha", "admin@alpha.example").status_code == 302
    page = client.get("/t/alpha/maintenance/log")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    return "broken" if 'data-status="broken"' in html else "valid"


def set_status(conn, tenant_id: int, status: str) -> None:
    conn.execute(text("UPDATE tenants SET status = :s WHERE id = :t"),
                 {"s": status, "t": tenant_id})


def test_close_delete_reopen_is_refused_by_the_database(world):
    for statement in ("DELETE FROM access_log WHERE tenant_id = :t",
                      "DELETE FROM access_log_heads WHERE tenant_id = :t"):
        with world.app.app_context(), pytest.raises(DBAPIError, match="refused"), \
                db.engine.begin() as conn:
            set_status(conn, world.tenant_id, "closed")
            conn.execute(text(statement), {"t": world.tenant_id})
    assert verdict(world).ok and verdict(world).count == 5
    assert log_page_status(world) == "valid"


def test_a_forged_purge_record_lets_the_delete_through_but_not_past_verification(world):
    with world.app.app_context(), db.engine.begin() as conn:
        set_status(conn, world.tenant_id, "closed")
        head = conn.execute(select(HEADS).where(HEADS.c.tenant_id == world.tenant_id)).one()
        conn.execute(insert(PURGES).values(
            tenant_uid=world.uid, tenant_slug="alpha", entry_count=head.entry_count,
            last_hash=head.last_hash, chain_ok=True, purged_at="2030-01-01T00:00:00.000000Z",
            seal="0" * 64))
        conn.execute(text("DELETE FROM access_log WHERE tenant_id = :t"), {"t": world.tenant_id})
        conn.execute(text("DELETE FROM access_log_heads WHERE tenant_id = :t"),
                     {"t": world.tenant_id})
        set_status(conn, world.tenant_id, "active")
    result = verdict(world)
    assert not result.ok and "forged purge" in result.reason
    assert command_verdicts(world.app)["alpha"][1].startswith("the purge record's seal is wrong")
    assert log_page_status(world) == "broken"
    with world.app.app_context(), pytest.raises(DBAPIError, match="append-only"), \
            db.engine.begin() as conn:
        conn.execute(text("DELETE FROM access_log_purges"))
    with world.app.app_context(), pytest.raises(audit.AuditWriteError, match="purged"):
        audit.append(world.tenant_id, "view", actor_kind="staff", actor_name="Eve")


def test_a_log_emptied_with_the_triggers_disabled_is_caught(world):
    with attacker(world.app) as conn:
        conn.execute(text("DELETE FROM access_log WHERE tenant_id = :t"), {"t": world.tenant_id})
        conn.execute(text("DELETE FROM access_log_heads WHERE tenant_id = :t"),
                     {"t": world.tenant_id})
    result = verdict(world)
    assert not result.ok and result.count == 0
    assert "the witness saw 5 entries, the log has 0" in result.reason
    assert log_page_status(world) == "broken"
    # Without the witness too, the requests and grants still need their entries.
    with world.app.app_context():
        witness.path(world.uid).unlink()
    result = verdict(world)
    assert not result.ok
    assert f"request {world.requests[0]} (denied) has no 'request' entry" in result.reason
    assert command_verdicts(world.app, "alpha")["alpha"][0] == 1
    assert log_page_status(world) == "broken"


def test_a_shortened_log_resealed_with_the_key_is_caught_by_the_requests(world):
    """The attacker holds the key and removed the witness: the revocation still has to be in
    the log."""
    with attacker(world.app) as conn:
        conn.execute(text("DELETE FROM access_log WHERE tenant_id = :t AND seq = 5"),
                     {"t": world.tenant_id})
        last = conn.execute(text("SELECT hash FROM access_log WHERE tenant_id = :t AND seq = 4"),
                            {"t": world.tenant_id}).scalar_one()
        conn.execute(update(HEADS).where(HEADS.c.tenant_id == world.tenant_id).values(
            entry_count=4, last_hash=last, seal=audit.seal(world.uid, 4, last)))
    with world.app.app_context():
        witness.path(world.uid).unlink()
    result = verdict(world)
    assert not result.ok
    assert f"request {world.requests[1]} (approved) has no 'revocation' entry" in result.reason
    assert log_page_status(world) == "broken"


def test_an_older_genuine_head_put_back_is_caught_by_the_witness(world):
    with world.app.app_context():
        old = db.session.execute(select(HEADS).where(HEADS.c.tenant_id == world.tenant_id)).one()
        for _ in range(2):
            audit.append(world.tenant_id, "view", actor_kind="staff", actor_name="Eve",
                         request_public_id=world.requests[1])
    with attacker(world.app) as conn:
        conn.execute(text("DELETE FROM access_log WHERE tenant_id = :t AND seq > 5"),
                     {"t": world.tenant_id})
        conn.execute(update(HEADS).where(HEADS.c.tenant_id == world.tenant_id).values(
            entry_count=old.entry_count, last_hash=old.last_hash, seal=old.seal,
            updated_at=old.updated_at))
    result = verdict(world)
    assert not result.ok
    assert "the witness saw 7 entries, the log has 5: rolled back" in result.reason
    assert log_page_status(world) == "broken"
    # Writing on from the old head does not cover it up: seq 6 is witnessed twice.
    with world.app.app_context():
        audit.append(world.tenant_id, "view", actor_kind="staff", actor_name="Eve")
        audit.append(world.tenant_id, "view", actor_kind="staff", actor_name="Eve")
    result = verdict(world)
    assert not result.ok and result.first_bad_seq == 6
    assert "two different entries 6" in result.reason


def test_a_legitimate_purge_verifies_as_a_purge(world):
    app = world.app
    with app.app_context():
        head = audit.head(world.tenant_id)
        tenant = db.session.get(Tenant, world.tenant_id)
        destroy_tenant(app.extensions["qalitel_settings"], tenant)
        assert db.session.execute(select(func.count()).select_from(MaintenanceRequest)
                                  ).scalar() == 0
        ((purge, result),) = verify_purges()
        assert (purge.tenant_uid, purge.tenant_slug) == (world.uid, "alpha")
        assert result.ok and result.purged_at == purge.purged_at
        assert (result.count, result.last_hash) == (head.count, head.last_hash)
        assert purge.chain_ok
        assert witness.read(world.uid).purged == (5, head.last_hash)
    outcome = app.test_cli_runner().invoke(args=["audit", "verify"])
    assert outcome.exit_code == 0, outcome.output
    assert f"alpha (destroyed, uid {world.uid}): purged at {purge.purged_at}: 5 entries" \
        in outcome.output
    assert "bravo: ok, 0 entries" in outcome.output
    with app.app_context(), pytest.raises(DBAPIError, match="append-only"), \
            db.engine.begin() as conn:
        conn.execute(text("UPDATE access_log_purges SET entry_count = 0"))


def test_destroying_a_tenant_drops_its_grant_roles(client_world):
    """A grant's PostgreSQL login role is a server-wide object: it goes with the tenant."""
    from tenants import pg
    from tests.fixtures.pg import PG_URL

    app = client_world.app
    public_id = client_world.request(scope="read")
    admin = client_world.signed_in("admin@alpha.example")
    token = admin.get("/t/alpha/api/maintenance/requests").get_json()["csrf_token"]
    response = admin.post(f"/t/alpha/api/maintenance/requests/{public_id}/approve", json={},
                          headers={"X-CSRFToken": token})
    assert response.status_code == 200, response.get_data(as_text=True)
    with app.app_context():
        (role,) = db.session.execute(select(Grant.role_name)).scalars().all()
        alpha = db.session.query(Tenant).filter_by(slug="alpha").one()
        on_pg = alpha.server is not None
        assert (role is not None) is on_pg  # SQLite grants have no role of their own
        if on_pg:
            with pg.admin_connection(PG_URL) as conn:
                assert pg.role_exists(conn, role)
        destroy_tenant(app.extensions["qalitel_settings"], alpha)
        assert db.session.query(Tenant).filter_by(slug="alpha").count() == 0
        if on_pg:
            with pg.admin_connection(PG_URL) as conn:
                assert not pg.role_exists(conn, role)
