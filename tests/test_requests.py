"""Maintenance requests: made by staff (console or CLI), logged, expiring, never approved here."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from core.db import db
from maintenance import requests as maintenance_requests
from maintenance.models import AccessLogEntry, MaintenanceRequest, RequestStatus
from tests.conftest import csrf_token, make_staff, staff_login


def _log(app, slug: str = "alpha") -> list[AccessLogEntry]:
    from tenants.registry import Tenant

    with app.app_context():
        tenant_id = db.session.execute(select(Tenant.id).where(Tenant.slug == slug)).scalar_one()
        return list(db.session.execute(select(AccessLogEntry).where(
            AccessLogEntry.tenant_id == tenant_id).order_by(AccessLogEntry.seq)).scalars())


def _request(app, public_id: str) -> MaintenanceRequest:
    with app.app_context():
        found = db.session.execute(select(MaintenanceRequest).where(
            MaintenanceRequest.public_id == public_id)).scalar_one()
        db.session.expunge(found)
        return found


def test_cli_request_prints_its_id_and_is_logged(maint_world):
    app, eve = maint_world.app, maint_world.eve
    result = app.test_cli_runner().invoke(args=[
        "maintenance", "request", "--tenant", "alpha", "--engineer", eve.email,
        "--reason", "Slow dashboard, ticket from the client", "--ticket", "SUP-1234"])
    assert result.exit_code == 0, result.output
    public_id = result.output.splitlines()[0].strip()
    assert str(uuid.UUID(public_id)) == public_id
    made = _request(app, public_id)
    assert made.status is RequestStatus.PENDING and made.scope.value == "read"
    assert made.hours == 2 and made.ticket == "SUP-1234"
    now = maint_world.clock()
    assert maintenance_requests.aware(made.pending_until) == now + timedelta(hours=12)
    entries = _log(app)
    assert [e.event for e in entries] == ["request"]
    entry = entries[0]
    assert entry.actor_kind == "staff" and entry.actor_name == "Eve Engineer"
    assert entry.actor_email == eve.email and entry.request_public_id == public_id
    assert entry.detail["reason"] == "Slow dashboard, ticket from the client"
    assert _log(app, "bravo") == []


BAD_INPUT = [
    (["--reason", "x" * 2001], "2000"),
    (["--reason", "   "], "reason is required"),
    (["--reason", "ok", "--ticket", "T" * 101], "100"),
    (["--reason", "ok", "--ticket", "bad\x07ref"], "printable"),
    (["--reason", "ok", "--hours", "4.5"], "capped at 4"),
    (["--reason", "ok", "--hours", "0"], "positive"),
    (["--reason", "ok", "--hours", "nan"], "positive"),
    (["--reason", "ok", "--tenant", "nosuch"], "no tenant"),
    (["--reason", "ok", "--tenant", "../etc"], "invalid slug"),
    (["--reason", "ok", "--engineer", "nobody@scoqi.example"], "no staff account"),
]


def test_cli_request_refuses_bad_input(maint_world):
    app = maint_world.app
    args = ["maintenance", "request", "--tenant", "alpha", "--engineer", maint_world.eve.email]
    for extra, message in BAD_INPUT:
        result = app.test_cli_runner().invoke(args=args + extra)
        assert result.exit_code != 0, extra
        assert message in result.output, (extra, result.output)
    with app.app_context():
        assert db.session.query(MaintenanceRequest).count() == 0
    assert _log(app) == []


def test_scope_choice_and_configurable_cap(make_app, password_hash):
    from tests.conftest import provision

    app = make_app("sqlite", maintenance_max_hours=6, maintenance_default_hours=3)
    provision(app, "alpha", password_hash)
    eve = make_staff(app)
    runner = app.test_cli_runner()
    base = ["maintenance", "request", "--tenant", "alpha", "--engineer", eve.email,
            "--reason", "disk"]
    assert runner.invoke(args=base + ["--scope", "write"]).exit_code == 2
    long = runner.invoke(args=base + ["--scope", "read-write", "--hours", "5.5"])
    assert long.exit_code == 0, long.output
    made = _request(app, long.output.splitlines()[0])
    assert made.scope.value == "read-write" and made.hours == 5.5
    default = runner.invoke(args=base)
    assert _request(app, default.output.splitlines()[0]).hours == 3
    assert runner.invoke(args=base + ["--hours", "6.5"]).exit_code == 1


def test_console_request_form(maint_world):
    app = maint_world.app
    client = app.test_client()
    staff_login(client, app, maint_world.eve)
    form = client.get("/staff/requests/new?tenant=alpha").get_data(as_text=True)
    assert 'selected value="alpha"' in form
    token = csrf_token(client, "/staff/requests/new")
    data = {"csrf_token": token, "tenant": "alpha", "reason": "<b>check</b> indexes",
            "ticket": "SUP-9", "scope": "read", "hours": "1,5"}
    assert client.post("/staff/requests/new", data={**data, "csrf_token": "x"}).status_code \
        == 400
    too_long = client.post("/staff/requests/new", data={**data, "reason": "y" * 2001})
    assert too_long.status_code == 400
    too_many_hours = client.post("/staff/requests/new", data={**data, "hours": "9"})
    assert too_many_hours.status_code == 400 and b"capped" in too_many_hours.data
    assert client.post("/staff/requests/new", data={**data, "tenant": "nosuch"}).status_code \
        == 400
    made = client.post("/staff/requests/new", data=data)
    assert made.status_code == 302
    detail = client.get(made.headers["Location"])
    page = detail.get_data(as_text=True)
    assert detail.status_code == 200 and "pending" in page
    assert "&lt;b&gt;check&lt;/b&gt; indexes" in page and "<b>check" not in page
    with app.app_context():
        row = db.session.query(MaintenanceRequest).one()
        assert row.hours == 1.5 and row.engineer.email == maint_world.eve.email
    assert [e.event for e in _log(app)] == ["request"]


def test_forged_request_ids_are_404(maint_world):
    app = maint_world.app
    public_id = maint_world.request("alpha")
    eve, mallory = app.test_client(), app.test_client()
    staff_login(eve, app, maint_world.eve)
    staff_login(mallory, app, maint_world.mallory)
    assert eve.get(f"/staff/tenants/alpha/requests/{public_id}").status_code == 200
    assert eve.get(f"/staff/tenants/bravo/requests/{public_id}").status_code == 404
    assert mallory.get(f"/staff/tenants/alpha/requests/{public_id}").status_code == 404
    assert eve.get(f"/staff/tenants/alpha/requests/{uuid.uuid4()}").status_code == 404
    assert eve.get("/staff/tenants/alpha/requests/" + "x" * 300).status_code == 404
    assert public_id not in mallory.get("/staff/").get_data(as_text=True)


def test_pending_request_expires_lazily_once(maint_world):
    app = maint_world.app
    public_id = maint_world.request("alpha")
    client = app.test_client()
    maint_world.clock.advance(hours=11, minutes=59)
    staff_login(client, app, maint_world.eve)
    assert b"pending" in client.get(f"/staff/tenants/alpha/requests/{public_id}").data
    maint_world.clock.advance(minutes=1)
    page = client.get(f"/staff/tenants/alpha/requests/{public_id}").get_data(as_text=True)
    assert "expired" in page and "pending" not in page
    assert _request(app, public_id).status is RequestStatus.EXPIRED
    client.get("/staff/")
    entries = _log(app)
    assert [e.event for e in entries] == ["request", "request_expired"]
    assert entries[1].actor_kind == "system" and entries[1].request_public_id == public_id
    assert _request(app, public_id).status is RequestStatus.EXPIRED


def test_expire_command_for_cron(maint_world):
    app = maint_world.app
    first = maint_world.request("alpha")
    maint_world.clock.advance(hours=6)
    second = maint_world.request("bravo")
    maint_world.clock.advance(hours=6)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["maintenance", "expire"])
    assert result.exit_code == 0 and "1 request(s) expired" in result.output
    assert first in result.output and second not in result.output
    assert runner.invoke(args=["maintenance", "expire"]).output.startswith("0 request(s)")
    maint_world.clock.advance(hours=6)
    assert second in runner.invoke(args=["maintenance", "expire"]).output
    assert [e.event for e in _log(app, "bravo")] == ["request", "request_expired"]
    listed = runner.invoke(args=["maintenance", "list", "--status", "expired"])
    assert first in listed.output and second in listed.output


def test_hooks_see_each_new_request(maint_world):
    seen: list[tuple[str, str]] = []

    def hook(request: MaintenanceRequest) -> None:
        seen.append((request.public_id, request.tenant.slug))

    def broken(_request: MaintenanceRequest) -> None:
        raise RuntimeError("mail server down")

    maintenance_requests.on_request_created.extend([broken, hook])
    try:
        public_id = maint_world.request("bravo")
    finally:
        maintenance_requests.on_request_created.remove(hook)
        maintenance_requests.on_request_created.remove(broken)
    assert seen == [(public_id, "bravo")]


def test_no_request_without_its_log_entry(maint_world):
    """When the access log cannot be written, the request is not made."""
    from maintenance.audit import AuditWriteError

    app = maint_world.app
    with app.app_context():
        db.session.execute(text("CREATE TRIGGER test_log_down BEFORE INSERT ON access_log "
                                "BEGIN SELECT RAISE(ABORT, 'log down'); END"))
        db.session.commit()
    with pytest.raises(AuditWriteError):
        maint_world.request("alpha")
    with app.app_context():
        assert db.session.query(MaintenanceRequest).count() == 0
    result = app.test_cli_runner().invoke(args=[
        "maintenance", "request", "--tenant", "alpha", "--engineer", maint_world.eve.email,
        "--reason", "x"])
    assert result.exit_code == 1 and "access log" in result.output


def test_suspended_tenant_takes_no_request(maint_world):
    app = maint_world.app
    assert app.test_cli_runner().invoke(args=["tenants", "suspend", "alpha"]).exit_code == 0
    with pytest.raises(maintenance_requests.RequestError, match="suspended"):
        maint_world.request("alpha")
