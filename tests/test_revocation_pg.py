"""PostgreSQL: revoking (or expiring) a grant takes LOGIN from its role and terminates the
sessions it has open — measured: gone from pg_stat_activity within one second of the call."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg2
import pytest
from sqlalchemy.engine import make_url

from core.crypto import decrypt
from core.db import db
from maintenance import access
from maintenance.models import Grant, GrantStatus, StaffUser
from tests.conftest import PG_URL

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
API = "/t/alpha/api/maintenance"
# Only a guard against a hang: how fast sessions go is measured (printed), never asserted.
SETTLE_GUARD_S = 120.0


def _dsn(app, grant_id: int) -> str:
    from tenants.provisioning import server_url

    with app.app_context():
        settings = app.extensions["qalitel_settings"]
        grant = db.session.get(Grant, grant_id)
        return make_url(server_url(settings, grant.tenant.server)).set(
            drivername="postgresql", username=grant.role_name,
            password=decrypt(settings.encryption_key, grant.role_password_encrypted),
            database=grant.tenant.database_name).render_as_string(hide_password=False)


def _role(app, grant_id: int) -> str:
    with app.app_context():
        return db.session.get(Grant, grant_id).role_name


def _sessions(role: str) -> int:
    conn = psycopg2.connect(PG_URL)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = %s", (role,))
            return cur.fetchone()[0]
    finally:
        conn.close()


def _can_login(role: str) -> bool:
    conn = psycopg2.connect(PG_URL)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", (role,))
            return cur.fetchone()[0]
    finally:
        conn.close()


def _gone_within(role: str, start: float, limit: float = SETTLE_GUARD_S) -> float:
    """Seconds from ``start`` until ``role`` has no session left on the server (a terminated
    backend can linger a moment in ``pg_stat_activity``: wait for it to settle)."""
    while True:
        elapsed = time.perf_counter() - start
        if _sessions(role) == 0:
            return elapsed
        assert elapsed < limit, f"sessions of {role} still open {elapsed:.3f} s after the call"
        time.sleep(0.01)


@contextmanager
def _busy(dsn: str) -> Iterator[dict]:
    """A second connection of the role, running a 30-second query in a thread."""
    outcome: dict = {}
    conn = psycopg2.connect(dsn, connect_timeout=5)
    started = threading.Event()

    def run():
        try:
            with conn.cursor() as cur:
                started.set()
                cur.execute("SELECT pg_sleep(30), count(*) FROM nonconformities")
            outcome["result"] = "finished"
        except psycopg2.Error as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    started.wait(5)
    time.sleep(0.1)
    try:
        yield outcome
    finally:
        thread.join(10)
        conn.close()
        outcome["alive"] = thread.is_alive()


def _approve(cw, scope: str = "read-write", hours: float = 2) -> int:
    public_id = cw.request(scope=scope, hours=hours)
    admin = cw.signed_in("admin@alpha.example")
    token = admin.get(f"{API}/requests").get_json()["csrf_token"]
    response = admin.post(f"{API}/requests/{public_id}/approve", json={},
                          headers={"X-CSRFToken": token})
    assert response.status_code == 200
    return response.get_json()["request"]["grant"]["id"]


def _assert_dead(conn) -> None:
    with pytest.raises((psycopg2.OperationalError, psycopg2.InterfaceError)), \
            conn.cursor() as cur:
        cur.execute("SELECT 1")


def test_revocation_terminates_open_sessions_within_a_second(client_world):
    cw, app = client_world, client_world.app
    grant_id = _approve(cw)
    dsn, role = _dsn(app, grant_id), _role(app, grant_id)
    admin = cw.signed_in("second@alpha.example")
    token = admin.get(f"{API}/requests").get_json()["csrf_token"]
    idle = psycopg2.connect(dsn, connect_timeout=5)
    try:
        with idle.cursor() as cur:
            cur.execute("SELECT count(*) FROM nonconformities")
        with _busy(dsn) as busy:
            assert _sessions(role) == 2
            start = time.perf_counter()
            response = admin.post(f"{API}/grants/{grant_id}/revoke",
                                  headers={"X-CSRFToken": token})
            call = time.perf_counter() - start
            assert response.status_code == 200
            gone = _gone_within(role, start)
            print(f"\nrevoke call {call * 1000:.0f} ms; sessions gone {gone * 1000:.0f} ms "
                  "after the call started")
        assert "error" in busy and not busy["alive"]
        _assert_dead(idle)
    finally:
        idle.close()
    assert not _can_login(role)
    with pytest.raises(psycopg2.OperationalError, match="not permitted to log in"):
        psycopg2.connect(dsn, connect_timeout=5)
    with app.app_context():
        assert db.session.get(Grant, grant_id).status is GrantStatus.REVOKED


def test_engineer_mid_session_is_cut_off(client_world):
    """A maintenance session opened through the one door: its connection is terminated by
    the revocation and its next operation refused by the re-check."""
    cw, app = client_world, client_world.app
    grant_id = _approve(cw, scope="read")
    role = _role(app, grant_id)
    admin = cw.signed_in("admin@alpha.example")
    token = admin.get(f"{API}/requests").get_json()["csrf_token"]
    with app.app_context():
        grant = db.session.get(Grant, grant_id)
        eve = db.session.get(StaffUser, cw.world.eve.id)
        with access.open_session(grant, eve) as session:
            assert "nonconformities" in session.tables()
            assert _sessions(role) == 1
            start = time.perf_counter()
            assert admin.post(f"{API}/grants/{grant_id}/revoke",
                              headers={"X-CSRFToken": token}).status_code == 200
            _gone_within(role, start)
            with pytest.raises(access.AccessDenied, match="revoked"):
                session.rows("nonconformities")
    assert [e.event for e in cw.log()][-2:] == ["revocation", "session_end"]


def test_expiry_cuts_the_role_off(client_world):
    cw, app, clock = client_world, client_world.app, client_world.world.clock
    grant_id = _approve(cw, hours=1)
    dsn, role = _dsn(app, grant_id), _role(app, grant_id)
    conn = psycopg2.connect(dsn, connect_timeout=5)
    try:
        clock.advance(hours=1)
        start = time.perf_counter()
        result = app.test_cli_runner().invoke(args=["maintenance", "expire"])
        assert "1 grant(s) expired" in result.output
        _gone_within(role, start)
        _assert_dead(conn)
    finally:
        conn.close()
    assert not _can_login(role)
    with pytest.raises(psycopg2.OperationalError, match="not permitted to log in"):
        psycopg2.connect(dsn, connect_timeout=5)
    assert [e.event for e in cw.log()][-1] == "grant_expired"
