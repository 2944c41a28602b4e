"""The maintenance access log: appended and committed first, chained, serialised, refused when
it cannot be written, append-only in the database, shown to client admins, and the clock."""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import UTC, datetime, timedelta

import psycopg2
import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from core import clock
from core.db import db
from maintenance import audit
from maintenance.models import AccessLogEntry, MaintenanceRequest, Scope, StaffUser
from maintenance.verify_log import GENESIS, check_lines, entry_hash
from tenants import pg
from tenants.registry import Backend, Tenant, TenantStatus
from tests.conftest import PG_URL, login, provision


def add_tenant(app, slug: str) -> int:
    """A registry row only (no database): the log lives in the platform database."""
    with app.app_context():
        tenant = Tenant(slug=slug, name=slug.title(), status=TenantStatus.ACTIVE,
                        backend=Backend.SQLITE, database_name=f"{slug}-none.sqlite3")
        db.session.add(tenant)
        db.session.commit()
        return tenant.id


def log_view(app, tenant_id: int, n: int = 1, **detail) -> list[AccessLogEntry]:
    with app.app_context():
        return [audit.append(tenant_id, "view", actor_kind="staff", actor_name="Éric Ingénieur",
                             actor_email="eric@scoqi.example",
                             detail={"table": "nonconformities", "ids": [i], **detail})
                for i in range(n)]


def raw_rows(app, tenant_id: int) -> list[dict]:
    """The committed rows, read through a connection of its own."""
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(
                text("SELECT * FROM access_log WHERE tenant_id = :t ORDER BY seq"),
                {"t": tenant_id})]
    finally:
        engine.dispose()


# ---------------------------------------------------------------- clock


def test_clock_is_real_utc_until_set_then_manual(platform_app):
    with platform_app.app_context():
        real = clock.now()
        assert real.tzinfo is not None and real.utcoffset() == timedelta(0)
        assert abs(real - datetime.now(UTC)) < timedelta(seconds=5)
        manual = clock.ManualClock(datetime(2030, 1, 31, 9, 0, tzinfo=UTC))
        clock.set_clock(platform_app, manual)
        assert clock.now() == datetime(2030, 1, 31, 9, 0, tzinfo=UTC)
        manual.advance(hours=5, minutes=1)
        assert clock.now() == datetime(2030, 1, 31, 14, 1, tzinfo=UTC)
        clock.set_clock(platform_app, None)
        assert abs(clock.now() - datetime.now(UTC)) < timedelta(seconds=5)
    with pytest.raises(ValueError, match="naive"):
        clock.ManualClock(datetime(2030, 1, 1))


def test_entries_carry_the_clock_time_in_canonical_utc(platform_app):
    tenant_id = add_tenant(platform_app, "alpha")
    paris = datetime(2030, 6, 1, 11, 30, 15, 42, tzinfo=UTC).astimezone(
        __import__("zoneinfo").ZoneInfo("Europe/Paris"))
    clock.set_clock(platform_app, lambda: paris)
    entry = log_view(platform_app, tenant_id)[0]
    assert entry.at == "2030-06-01T11:30:15.000042Z"


# ---------------------------------------------------------------- append


def test_append_commits_a_chained_entry_before_returning(platform_app):
    tenant_id = add_tenant(platform_app, "alpha")
    first, second, third = log_view(platform_app, tenant_id, 3)
    rows = raw_rows(platform_app, tenant_id)
    assert [r["seq"] for r in rows] == [1, 2, 3]
    assert rows[0]["prev_hash"] == GENESIS
    assert rows[1]["prev_hash"] == rows[0]["hash"] and rows[2]["prev_hash"] == rows[1]["hash"]
    assert (first.seq, second.seq, third.seq) == (1, 2, 3)
    assert third.hash == rows[2]["hash"] and third.id == rows[2]["id"]
    with platform_app.app_context():
        uid = db.session.get(Tenant, tenant_id).uid
        assert first.actor_name == "Éric Ingénieur" and first.detail["ids"] == [0]
        fields = {"tenant_uid": uid, **{k: getattr(first, k) for k in (
            "seq", "at", "event", "actor_kind", "actor_name", "actor_email",
            "request_public_id", "detail", "prev_hash")}}
        assert entry_hash(fields) == first.hash
        head = audit.head(tenant_id)
        assert (head.count, head.last_hash) == (3, third.hash)
        assert audit.verify(tenant_id) == audit.VerifyResult(True, 3, None, None, third.hash)


def test_the_returned_entry_is_detached_and_not_inserted_twice(platform_app):
    tenant_id = add_tenant(platform_app, "alpha")
    entry = log_view(platform_app, tenant_id)[0]
    with platform_app.app_context():
        merged = db.session.merge(entry)
        db.session.commit()
        assert merged.seq == 1
        assert db.session.query(AccessLogEntry).count() == 1


def test_every_event_and_actor_kind_is_accepted_and_others_refused(platform_app):
    tenant_id = add_tenant(platform_app, "alpha")
    with platform_app.app_context():
        for event in audit.EVENTS:
            for kind in audit.ACTOR_KINDS:
                audit.append(tenant_id, event, actor_kind=kind, actor_name="Ada Admin",
                             actor_email="ada@alpha.example")
        for bad in ({"event": "peek"}, {"actor_kind": "robot"}, {"actor_name": "  "},
                    {"actor_name": "x" * 201}, {"detail": {"x": float("nan")}},
                    {"detail": {"x": object()}}, {"detail": ["not", "a", "dict"]}):
            arguments = {"event": "view", "actor_kind": "staff", "actor_name": "Eve",
                         **bad}
            with pytest.raises(ValueError):
                audit.append(tenant_id, arguments.pop("event"), **arguments)
        result = audit.verify(tenant_id)
    assert result.ok and result.count == len(audit.EVENTS) * len(audit.ACTOR_KINDS)


def test_detail_is_stored_as_it_reads_back_from_json(platform_app):
    tenant_id = add_tenant(platform_app, "alpha")
    with platform_app.app_context():
        when = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
        entry = audit.append(tenant_id, "change", actor_kind="staff", actor_name="Eve",
                             detail={"table": "nonconformities", "ids": (3, 1), "at": when,
                                     "scope": Scope.READ_WRITE, 7: "int key", "hours": 1.5,
                                     "nested": {"b": [1, {"z": None}], "a": "é"}})
        assert entry.detail == {"table": "nonconformities", "ids": [3, 1],
                                "at": "2030-01-02T03:04:05.000000Z", "scope": "read-write",
                                "7": "int key", "hours": 1.5,
                                "nested": {"b": [1, {"z": None}], "a": "é"}}
        stored = db.session.execute(select(AccessLogEntry.detail)).scalar_one()
        assert stored == entry.detail
        assert audit.verify(tenant_id).ok


def test_unknown_tenant_is_a_write_error(platform_app):
    with platform_app.app_context(), pytest.raises(audit.AuditWriteError, match="no tenant"):
        audit.append(99999, "view", actor_kind="staff", actor_name="Eve")


def test_concurrent_appends_from_threads_make_one_unbroken_chain(platform_app):
    alpha, bravo = add_tenant(platform_app, "alpha"), add_tenant(platform_app, "bravo")
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def writer(n: int) -> None:
        try:
            with platform_app.app_context():
                barrier.wait()
                for i in range(12):
                    audit.append(alpha if (n + i) % 3 else bravo, "view", actor_kind="staff",
                                 actor_name=f"Writer {n}", detail={"i": i})
                db.session.remove()
        except BaseException as exc:  # reported below, the thread must not die silently
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    a_rows, b_rows = raw_rows(platform_app, alpha), raw_rows(platform_app, bravo)
    assert len(a_rows) + len(b_rows) == 48
    assert [r["seq"] for r in a_rows] == list(range(1, len(a_rows) + 1))
    assert [r["seq"] for r in b_rows] == list(range(1, len(b_rows) + 1))
    with platform_app.app_context():
        for tenant_id, rows in ((alpha, a_rows), (bravo, b_rows)):
            result = audit.verify(tenant_id)
            assert result.ok and result.count == len(rows), result


# ---------------------------------------------------------------- failure: access is refused


def test_missing_table_is_a_write_error_and_nothing_half_written(platform_app):
    tenant_id = add_tenant(platform_app, "alpha")
    log_view(platform_app, tenant_id, 2)
    with platform_app.app_context():
        with db.engine.begin() as conn:
            conn.execute(text("ALTER TABLE access_log RENAME TO access_log_gone"))
        with pytest.raises(audit.AuditWriteError, match="not written"):
            audit.append(tenant_id, "session_start", actor_kind="staff", actor_name="Eve")
        with db.engine.begin() as conn:
            conn.execute(text("ALTER TABLE access_log_gone RENAME TO access_log"))
        assert audit.head(tenant_id).count == 2
        audit.append(tenant_id, "session_start", actor_kind="staff", actor_name="Eve")
        result = audit.verify(tenant_id)
    assert result.ok and result.count == 3


def test_locked_log_is_a_write_error_after_the_timeout(platform_app, backend):
    tenant_id = add_tenant(platform_app, "alpha")
    log_view(platform_app, tenant_id)
    platform_app.config["AUDIT_LOCK_TIMEOUT_MS"] = 300
    url = platform_app.config["SQLALCHEMY_DATABASE_URI"]
    if backend == "sqlite":
        holder = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
    else:
        holder = psycopg2.connect(pg.libpq_dsn(url))
        holder.cursor().execute("LOCK TABLE access_log IN EXCLUSIVE MODE")
    try:
        with platform_app.app_context(), pytest.raises(audit.AuditWriteError):
            audit.append(tenant_id, "view", actor_kind="staff", actor_name="Eve")
    finally:
        holder.rollback()
        holder.close()
    with platform_app.app_context():
        audit.append(tenant_id, "view", actor_kind="staff", actor_name="Eve")
        assert audit.verify(tenant_id).count == 2


def test_read_only_platform_database_is_a_write_error(platform_app, backend):
    tenant_id = add_tenant(platform_app, "alpha")
    with platform_app.app_context():
        db.engine.dispose()
        if backend == "postgresql":
            name = db.engine.url.database
            with pg.admin_connection(PG_URL) as conn, conn.cursor() as cur:
                cur.execute(pg.sql.SQL("ALTER DATABASE {} SET default_transaction_read_only "
                                       "= on").format(pg.sql.Identifier(name)))
        else:
            holder = db.engine.raw_connection()
            holder.driver_connection.execute("PRAGMA query_only = ON")
            holder.close()  # back to the pool, read-only: the next checkout gets it
        try:
            with pytest.raises(audit.AuditWriteError, match="read-only|readonly"):
                audit.append(tenant_id, "view", actor_kind="staff", actor_name="Eve")
        finally:
            db.engine.dispose()
            if backend == "postgresql":
                with pg.admin_connection(PG_URL) as conn, conn.cursor() as cur:
                    cur.execute(pg.sql.SQL("ALTER DATABASE {} RESET "
                                           "default_transaction_read_only")
                                .format(pg.sql.Identifier(name)))
        assert audit.head(tenant_id).count == 0
        audit.append(tenant_id, "view", actor_kind="staff", actor_name="Eve")
        assert audit.verify(tenant_id).ok


def test_sqlite_uncommitted_session_write_is_refused_at_once(make_app):
    app = make_app("sqlite")
    tenant_id = add_tenant(app, "alpha")
    with app.app_context():
        db.session.get(Tenant, tenant_id).name = "Renamed"
        db.session.flush()
        started = datetime.now(UTC)
        with pytest.raises(audit.AuditWriteError, match="append to the access log first"):
            audit.append(tenant_id, "approval", actor_kind="client", actor_name="Ada")
        assert datetime.now(UTC) - started < timedelta(seconds=2)
        db.session.rollback()
        audit.append(tenant_id, "approval", actor_kind="client", actor_name="Ada")


# ---------------------------------------------------------------- append-only in the database


def test_database_refuses_update_and_delete_of_entries_and_heads(platform_app):
    tenant_id = add_tenant(platform_app, "alpha")
    log_view(platform_app, tenant_id, 2)
    with platform_app.app_context():
        assert audit.missing_guards() == []
        for statement in ("UPDATE access_log SET actor_name = 'Nobody'",
                          "UPDATE access_log SET seq = seq + 10",
                          "DELETE FROM access_log WHERE seq = 2",
                          "DELETE FROM access_log_heads",
                          "UPDATE access_log_heads SET entry_count = 1",
                          "UPDATE access_log_heads SET entry_count = entry_count + 2",
                          "DELETE FROM tenants"):
            with pytest.raises(DBAPIError, match="append-only|access_log_heads"), \
                    db.engine.begin() as conn:
                conn.execute(text(statement))
        if db.engine.dialect.name == "postgresql":
            with pytest.raises(DBAPIError, match="append-only"), db.engine.begin() as conn:
                conn.execute(text("TRUNCATE access_log"))
        assert audit.verify(tenant_id).ok and audit.verify(tenant_id).count == 2


def test_verify_command_reports_missing_guards(platform_app, backend):
    tenant_id = add_tenant(platform_app, "alpha")
    log_view(platform_app, tenant_id)
    with platform_app.app_context(), db.engine.begin() as conn:
        if backend == "sqlite":
            conn.execute(text("DROP TRIGGER access_log_no_delete"))
        else:
            conn.execute(text("ALTER TABLE access_log DISABLE TRIGGER access_log_no_delete"))
    outcome = platform_app.test_cli_runner().invoke(args=["audit", "verify"])
    assert outcome.exit_code == 1
    assert "alpha: ok, 1 entries" in outcome.output
    assert "access_log_no_delete" in outcome.output


# ---------------------------------------------------------------- commands


def test_verify_and_export_commands(platform_app, tmp_path):
    alpha, bravo = add_tenant(platform_app, "alpha"), add_tenant(platform_app, "bravo")
    log_view(platform_app, alpha, 3)
    log_view(platform_app, bravo, 1)
    runner = platform_app.test_cli_runner()
    everyone = runner.invoke(args=["audit", "verify"])
    assert everyone.exit_code == 0, everyone.output
    assert "alpha: ok, 3 entries" in everyone.output and "bravo: ok, 1 entries" in everyone.output
    one = runner.invoke(args=["audit", "verify", "bravo"])
    assert one.exit_code == 0 and "alpha" not in one.output
    assert runner.invoke(args=["audit", "verify", "nobody"]).exit_code == 2
    out = tmp_path / "alpha.jsonl"
    exported = runner.invoke(args=["audit", "export", "alpha", "--output", str(out)])
    assert exported.exit_code == 0, exported.output
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3 and json.loads(lines[0])["actor_name"] == "Éric Ingénieur"
    assert check_lines(lines)[2:] == (0, None)
    stdout = runner.invoke(args=["audit", "export", "alpha"])
    assert stdout.output.splitlines() == lines


# ---------------------------------------------------------------- the client admins' page


def _request_by(app, tenant_id: int) -> str:
    with app.app_context():
        staff = StaffUser(email="eve@scoqi.example", name="Eve Engineer", password_hash="x",
                          totp_secret_encrypted="x", session_token="x")
        db.session.add(staff)
        db.session.flush()
        now = clock.now()
        request = MaintenanceRequest(tenant_id=tenant_id, engineer_id=staff.id,
                                     reason="Investigate ticket #42", scope=Scope.READ,
                                     hours=2, created_at=now, pending_until=now)
        db.session.add(request)
        db.session.commit()
        return request.public_id


@pytest.fixture
def logged(platform_app, password_hash):
    """alpha and bravo provisioned; alpha's log has a request, an approval and a view."""
    a = provision(platform_app, "alpha", password_hash, records=0)
    b = provision(platform_app, "bravo", password_hash, records=0)
    with platform_app.app_context():
        a_id = db.session.execute(select(Tenant.id).where(Tenant.slug == "alpha")).scalar()
    public_id = _request_by(platform_app, a_id)
    with platform_app.app_context():
        audit.append(a_id, "request", actor_kind="staff", actor_name="Eve Engineer",
                     actor_email="eve@scoqi.example", request_public_id=public_id,
                     detail={"reason": "Investigate ticket #42", "scope": "read"})
        audit.append(a_id, "approval", actor_kind="client", actor_name="Admin alpha",
                     actor_email=a.admin_email, request_public_id=public_id)
        audit.append(a_id, "view", actor_kind="staff", actor_name="Eve Engineer",
                     actor_email="eve@scoqi.example", request_public_id=public_id,
                     detail={"table": "nonconformities", "record_ids": [7, 9]})
    return platform_app, a, b, a_id


def test_admin_sees_the_log_with_names_and_a_valid_banner(logged):
    app, a, _b, _a_id = logged
    client = app.test_client()
    login(client, "alpha", a.admin_email)
    page = client.get("/t/alpha/maintenance/log")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'data-status="valid"' in html
    for text_ in ("Eve Engineer", "eve@scoqi.example", "Admin alpha", a.admin_email,
                  "Investigate ticket #42", "nonconformities", "[7, 9]"):
        assert text_ in html, text_
    table = html[html.index("<tbody>"):]
    assert table.index("nonconformities") < table.index("Admin alpha")  # newest first
    with app.app_context():
        assert audit.head(_a_id).last_hash in html


def test_admin_downloads_json_lines_the_standalone_check_accepts(logged):
    app, a, _b, a_id = logged
    client = app.test_client()
    login(client, "alpha", a.admin_email)
    response = client.get("/t/alpha/maintenance/log.jsonl")
    assert response.status_code == 200
    assert response.mimetype == "application/jsonl"
    assert "attachment" in response.headers["Content-Disposition"]
    lines = response.get_data(as_text=True).splitlines()
    assert [json.loads(line)["event"] for line in lines] == ["request", "approval", "view"]
    count, last, bad, reason = check_lines(lines)
    with app.app_context():
        assert (count, last, bad, reason) == (3, audit.head(a_id).last_hash, 0, None)


def test_only_admins_of_the_tenant_reach_the_log(logged):
    app, a, b, _a_id = logged
    anonymous = app.test_client()
    assert anonymous.get("/t/alpha/maintenance/log").status_code in (302, 401)
    user = app.test_client()
    login(user, "alpha", a.user_email)
    assert user.get("/t/alpha/maintenance/log").status_code == 403
    assert user.get("/t/alpha/maintenance/log.jsonl").status_code == 403
    other = app.test_client()
    login(other, "bravo", b.admin_email)
    assert other.get("/t/alpha/maintenance/log").status_code in (302, 401, 403, 404)
    own = other.get("/t/bravo/maintenance/log")
    assert own.status_code == 200
    html = own.get_data(as_text=True)
    assert "Eve Engineer" not in html and 'id="log-empty"' in html
    assert other.get("/t/bravo/maintenance/log.jsonl").get_data() == b""


def test_page_shows_where_the_chain_is_broken(logged, backend):
    app, a, _b, a_id = logged
    with app.app_context(), db.engine.begin() as conn:
        if backend == "sqlite":
            conn.execute(text("DROP TRIGGER access_log_no_update"))
        else:
            conn.execute(text("ALTER TABLE access_log DISABLE TRIGGER USER"))
        conn.execute(text("UPDATE access_log SET actor_name = 'Someone Else' "
                          "WHERE tenant_id = :t AND seq = 2"), {"t": a_id})
    client = app.test_client()
    login(client, "alpha", a.admin_email)
    html = client.get("/t/alpha/maintenance/log").get_data(as_text=True)
    assert 'data-status="broken" data-seq="2"' in html
    assert "entry 2 does not match its hash" in html


# ---------------------------------------------------------------- size


def seed_chain(app, tenant_id: int, n: int) -> str:
    """Write ``n`` valid entries in bulk (as ``append`` would, minus a transaction each);
    returns the last hash."""
    from sqlalchemy import insert

    from maintenance.models import AccessLogHead

    with app.app_context():
        uid = db.session.get(Tenant, tenant_id).uid
        previous, rows = GENESIS, []
        for seq in range(1, n + 1):
            fields = {"tenant_uid": uid, "seq": seq, "at": f"2030-01-01T00:00:00.{seq:06d}Z",
                      "event": "view", "actor_kind": "staff", "actor_name": "Éric Ingénieur",
                      "actor_email": "eric@scoqi.example", "request_public_id": None,
                      "detail": {"table": "nonconformities", "ids": [seq, seq + 1]},
                      "prev_hash": previous}
            previous = entry_hash(fields)
            del fields["tenant_uid"]
            rows.append({**fields, "tenant_id": tenant_id, "hash": previous})
        with db.engine.begin() as conn:
            for start in range(0, n, 5000):
                conn.execute(insert(AccessLogEntry.__table__), rows[start:start + 5000])
            conn.execute(insert(AccessLogHead.__table__).values(
                tenant_id=tenant_id, entry_count=n, last_hash=previous,
                seal=audit.seal(uid, n, previous), updated_at=rows[-1]["at"]))
        return previous


def test_verify_streams_a_long_chain_and_finds_an_edit_near_its_end(platform_app, backend):
    tenant_id = add_tenant(platform_app, "alpha")
    n = 20_000
    last = seed_chain(platform_app, tenant_id, n)
    with platform_app.app_context():
        result = audit.verify(tenant_id)
        assert result == audit.VerifyResult(True, n, None, None, last)
        audit.append(tenant_id, "session_end", actor_kind="staff", actor_name="Eve")
        with db.engine.begin() as conn:
            if backend == "sqlite":
                conn.execute(text("DROP TRIGGER access_log_no_update"))
            else:
                conn.execute(text("ALTER TABLE access_log DISABLE TRIGGER access_log_no_update"))
            conn.execute(text("UPDATE access_log SET actor_name = 'X' WHERE seq = :s"),
                         {"s": n - 1})
        result = audit.verify(tenant_id)
    assert (result.ok, result.first_bad_seq, result.count) == (False, n - 1, n - 2)
