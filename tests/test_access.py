"""The one door: with an approved grant, and only then, logged before every read or write."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg2
import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from core.db import db
from maintenance import access
from maintenance.audit import AuditWriteError
from maintenance.models import AccessLogEntry, Grant, GrantStatus, StaffUser
from tests.conftest import csrf_token, grant_for_test, staff_login

DATA_READ = re.compile(r'\bFROM\s+"?nonconformities"?', re.IGNORECASE)
DATA_WRITE = re.compile(r'\bUPDATE\s+"?nonconformities"?', re.IGNORECASE)


def _log(app, slug: str = "alpha") -> list[AccessLogEntry]:
    from tenants.registry import Tenant

    with app.app_context():
        tenant = db.session.query(Tenant).filter_by(slug=slug).one()
        return list(db.session.query(AccessLogEntry).filter_by(tenant_id=tenant.id)
                    .order_by(AccessLogEntry.seq))


def _committed_tail(app) -> tuple[str, dict] | None:
    """The newest access-log entry as another connection sees it (i.e. committed)."""
    url = make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    query = "SELECT event, detail FROM access_log ORDER BY id DESC LIMIT 1"
    if url.drivername.startswith("sqlite"):
        conn = sqlite3.connect(url.database)
    else:
        conn = psycopg2.connect(url.set(drivername="postgresql").render_as_string(False))
    try:
        cur = conn.cursor()
        cur.execute(query)
        row = cur.fetchone()
    finally:
        conn.close()
    if row is None:
        return None
    detail = row[1] if isinstance(row[1], dict) else json.loads(row[1])
    return row[0], detail


@contextmanager
def data_statements(app) -> Iterator[list[tuple[str, tuple[str, dict] | None]]]:
    """Every statement touching ``nonconformities`` on any engine, with the access-log entry
    committed at that moment."""
    seen: list[tuple[str, tuple[str, dict] | None]] = []

    def before(_conn, _cursor, statement, *_args):
        if DATA_READ.search(statement) or DATA_WRITE.search(statement):
            seen.append((statement, _committed_tail(app)))

    event.listen(Engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", before)


def _login(world, who=None):
    client = world.app.test_client()
    assert staff_login(client, world.app, who or world.eve).status_code == 302
    return client


def _record_id(world) -> int:
    return world.tenants.a.record_ids[0]


def test_grant_pages_show_data_each_view_logged_first(maint_world):
    world, app = maint_world, maint_world.app
    grant_id = grant_for_test(app, world.request("alpha"))
    client = _login(world)
    with data_statements(app) as seen:
        tables = client.get(f"/staff/grants/{grant_id}/")
        rows = client.get(f"/staff/grants/{grant_id}/tables/nonconformities")
        record = client.get(f"/staff/grants/{grant_id}/tables/nonconformities/"
                            f"{_record_id(world)}")
    assert tables.status_code == 200 and b"nonconformities" in tables.data
    assert rows.status_code == 200 and world.marker.encode() in rows.data
    assert record.status_code == 200 and world.marker.encode() in record.data
    # shown escaped, never as markup
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in record.data
    assert b"<script>alert" not in record.data + rows.data
    # every data statement ran after a committed "view" of that very table
    assert seen, "no data statement recorded"
    for statement, tail in seen:
        assert tail is not None and tail[0] == "view", statement
        assert tail[1]["table"] == "nonconformities"
    events = [(e.event, e.detail.get("what"), e.detail.get("table")) for e in _log(app)]
    assert events == [
        ("request", None, None), ("approval", None, None),
        ("session_start", None, None), ("view", "tables", None), ("session_end", None, None),
        ("session_start", None, None), ("view", "rows", "nonconformities"),
        ("session_end", None, None),
        ("session_start", None, None), ("view", "record", "nonconformities"),
        ("session_end", None, None)]
    entries = [e for e in _log(app) if e.event != "approval"]
    assert entries[8].detail["record_id"] == str(_record_id(world))
    assert all(e.actor_name == "Eve Engineer" and e.actor_email == world.eve.email
               for e in entries)
    assert entries[1].detail["session"] == entries[2].detail["session"] \
        == entries[3].detail["session"] != entries[4].detail["session"]
    assert _log(app, "bravo") == []


def test_credentials_are_never_selected(maint_world):
    """Password hashes and session tokens are outside the allow-list: not even a mask."""
    world, app = maint_world, maint_world.app
    grant_id = grant_for_test(app, world.request("alpha"))
    client = _login(world)
    users = client.get(f"/staff/grants/{grant_id}/tables/users").get_data(as_text=True)
    assert world.marker in users
    assert "password_hash" not in users and "session_token" not in users
    assert "scrypt:" not in users and "pbkdf2:" not in users


def test_expired_grant_is_refused_at_the_next_request(maint_world):
    world, app = maint_world, maint_world.app
    grant_id = grant_for_test(app, world.request("alpha"), hours=1)
    client = _login(world)
    assert client.get(f"/staff/grants/{grant_id}/tables/nonconformities").status_code == 200
    before = len(_log(app))
    world.clock.advance(minutes=59, seconds=59)
    assert client.get(f"/staff/grants/{grant_id}/").status_code == 200
    world.clock.advance(seconds=1)
    refused = client.get(f"/staff/grants/{grant_id}/tables/nonconformities")
    assert refused.status_code == 403 and world.marker.encode() not in refused.data
    # the last allowed page (3 entries); the refusal reads nothing, records the expiry
    assert [e.event for e in _log(app)][before + 3:] == ["grant_expired"]
    index = client.get("/staff/").get_data(as_text=True)
    assert "expired" in index and world.marker not in index


def test_revocation_takes_effect_at_the_next_request(maint_world):
    world, app = maint_world, maint_world.app
    grant_id = grant_for_test(app, world.request("alpha"))
    client = _login(world)
    url = f"/staff/grants/{grant_id}/tables/nonconformities/{_record_id(world)}"
    assert world.marker.encode() in client.get(url).data
    with app.app_context():
        db.session.get(Grant, grant_id).status = GrantStatus.REVOKED
        db.session.commit()
    refused = client.get(url)
    assert refused.status_code == 403 and world.marker.encode() not in refused.data


def test_long_lived_session_rechecks_the_grant(maint_world):
    world, app = maint_world, maint_world.app
    grant_id = grant_for_test(app, world.request("alpha"))
    with app.app_context():
        grant, eve = db.session.get(Grant, grant_id), db.session.get(StaffUser, world.eve.id)
        with access.open_session(grant, eve) as session:
            assert "nonconformities" in session.tables()
            with db.engine.begin() as conn:
                conn.execute(text("UPDATE maintenance_grants SET status = 'revoked' "
                                  "WHERE id = :id"), {"id": grant_id})
            with pytest.raises(access.AccessDenied, match="revoked"):
                session.rows("nonconformities")
    assert [e.event for e in _log(app)][-1] == "session_end"


def test_forged_grant_ids_are_404(maint_world):
    world, app = maint_world, maint_world.app
    grant_id = grant_for_test(app, world.request("alpha"))
    mallory = _login(world, world.mallory)
    for url in (f"/staff/grants/{grant_id}/", f"/staff/grants/{grant_id}/tables/users",
                f"/staff/grants/{grant_id}/tables/nonconformities/{_record_id(world)}",
                "/staff/grants/999999/", "/staff/grants/99999999999999999999/"):
        response = mallory.get(url)
        assert response.status_code == 404, url
        assert world.marker.encode() not in response.data
    eve = _login(world)
    assert eve.get(f"/staff/grants/{grant_id}/tables/no_such_table").status_code == 404
    assert eve.get(f"/staff/grants/{grant_id}/tables/users%3Bdrop").status_code == 404
    assert eve.get(f"/staff/grants/{grant_id}/tables/nonconformities/999999").status_code \
        == 404
    with app.app_context():
        mallory_user = db.session.get(StaffUser, world.mallory.id)
        assert access.grant_of(mallory_user, grant_id) is None
        with pytest.raises(access.AccessDenied):
            access.open_session(db.session.get(Grant, grant_id), mallory_user)


def test_read_scope_cannot_write(maint_world, backend):
    world, app = maint_world, maint_world.app
    grant_id = grant_for_test(app, world.request("alpha", scope="read"))
    client = _login(world)
    url = f"/staff/grants/{grant_id}/tables/nonconformities/{_record_id(world)}"
    page = client.get(url)
    assert b'name="value"' not in page.data  # no change form on a read grant
    posted = client.post(url, data={"csrf_token": csrf_token(client, "/staff/"),
                                    "column": "title", "value": "changed"})
    assert posted.status_code == 403
    with app.app_context():
        grant, eve = db.session.get(Grant, grant_id), db.session.get(StaffUser, world.eve.id)
        with access.open_session(grant, eve) as session:
            with pytest.raises(access.AccessDenied):
                session.update_field("nonconformities", _record_id(world), "title", "x")
            conn = session._connection()  # below the API: the database itself refuses
            with pytest.raises(DBAPIError) as refused:
                conn.exec_driver_sql("UPDATE nonconformities SET title = 'x'")
            conn.rollback()
            if backend == "sqlite":
                # the allow-list's authorizer refuses first; the file is read-only anyway
                assert "not authorized" in str(refused.value)
                assert conn.exec_driver_sql("PRAGMA query_only").scalar() == 1
                for statement in ("PRAGMA query_only=OFF", "ATTACH DATABASE ':memory:' AS x"):
                    with pytest.raises(DBAPIError, match="not authorized"):
                        conn.exec_driver_sql(statement)
            else:
                assert "permission denied" in str(refused.value)
    assert world.marker.encode() in client.get(url).data  # nothing changed


def test_read_write_change_is_logged_before_it_is_made(maint_world):
    from tests.conftest import in_tenant

    world, app = maint_world, maint_world.app
    grant_id = grant_for_test(app, world.request("alpha", scope="read-write"))
    client = _login(world)
    url = f"/staff/grants/{grant_id}/tables/nonconformities/{_record_id(world)}"
    assert b'name="value"' in client.get(url).data
    token = csrf_token(client, url)
    assert client.post(url, data={"column": "title", "value": "x"}).status_code == 400
    with data_statements(app) as seen:
        changed = client.post(url, data={"csrf_token": token, "column": "title",
                                         "value": "Fixed by maintenance"})
    assert changed.status_code == 302
    writes = [(s, tail) for s, tail in seen if DATA_WRITE.search(s)]
    # the change, then the app's own recomputation of the row's search text (records.search)
    assert len(writes) == 2 and writes[0][1][0] == "change"
    assert re.search(r"\bsearch_text\s*=", writes[1][0]) and "title" not in writes[1][0]
    assert writes[0][1][1] == {"session": writes[0][1][1]["session"], "table": "nonconformities",
                               "record_id": str(_record_id(world)), "column": "title",
                                "old": f"{world.marker} title", "new": "Fixed by maintenance"}
    with in_tenant(app, "alpha") as session:
        from qalitel.records.models import NonConformity

        assert session.get(NonConformity, _record_id(world)).title == "Fixed by maintenance"
    for column, value in (("password_hash", "x"), ("id", "5"), ("nope", "x")):
        response = client.post(url.replace("nonconformities", "users").rsplit("/", 1)[0]
                               + f"/{world.tenants.a.user_ids['user']}",
                               data={"csrf_token": token, "column": column, "value": value})
        assert response.status_code in (403, 404), column
    bad = client.post(url, data={"csrf_token": token, "column": "detected_on", "value": "abc"})
    assert bad.status_code == 400
    # outside the allow-list: refused with a clear message, not a database error
    refused = client.post(url, data={"csrf_token": token, "column": "number", "value": "7"})
    assert refused.status_code == 403 and b"cannot be changed" in refused.data


def test_nothing_is_read_when_the_log_cannot_be_written(maint_world):
    world, app = maint_world, maint_world.app
    grant_id = grant_for_test(app, world.request("alpha"))
    client = _login(world)
    with app.app_context():
        grant, eve = db.session.get(Grant, grant_id), db.session.get(StaffUser, world.eve.id)
        session = access.open_session(grant, eve)
        with db.engine.begin() as conn:
            conn.execute(text("CREATE TRIGGER test_log_down BEFORE INSERT ON access_log "
                              "BEGIN SELECT RAISE(ABORT, 'log down'); END"))
        with data_statements(app) as seen:
            with pytest.raises(AuditWriteError):
                session.rows("nonconformities")
            with pytest.raises(AuditWriteError):
                session.record("nonconformities", _record_id(world))
            session.close()
            refused = client.get(f"/staff/grants/{grant_id}/tables/nonconformities")
        assert seen == []
    assert refused.status_code == 503 and world.marker.encode() not in refused.data


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_grant_role_reaches_only_its_tenant(maint_world):
    """PostgreSQL: the grant's role has no CONNECT on another tenant's database."""
    from core.crypto import decrypt
    from tenants.provisioning import server_url
    from tenants.registry import Tenant

    world, app = maint_world, maint_world.app
    grant_id = grant_for_test(app, world.request("alpha"))
    with app.app_context():
        settings = app.extensions["qalitel_settings"]
        grant = db.session.get(Grant, grant_id)
        bravo = db.session.query(Tenant).filter_by(slug="bravo").one()
        url = make_url(server_url(settings, bravo.server)).set(
            drivername="postgresql", username=grant.role_name,
            password=decrypt(settings.encryption_key, grant.role_password_encrypted),
            database=bravo.database_name)
    with pytest.raises(psycopg2.OperationalError, match="permission denied"):
        psycopg2.connect(url.render_as_string(hide_password=False), connect_timeout=5)
