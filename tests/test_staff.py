"""Staff accounts and the console login: password AND a fresh TOTP code, a cookie of its own."""

from __future__ import annotations

import pytest
from itsdangerous import URLSafeTimedSerializer

from core.db import db
from maintenance.models import StaffUser
from tests.conftest import (
    PASSWORD,
    STAFF_PASSWORD,
    csrf_token,
    login,
    make_staff,
    staff_login,
    totp_code,
)


def _cookie(client, name: str = "qalitel_staff"):
    return client.get_cookie(name, path="/staff/")


def test_cli_create_prints_enrolment_uri_and_encrypts_secret(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["staff", "create", "Ops@SCOQI.example", "--name", "Olga Ops",
                                 "--password", "long enough password"])
    assert result.exit_code == 0, result.output
    uri = next(line for line in result.output.splitlines() if line.startswith("otpauth://"))
    assert "secret=" in uri and "issuer=QALITEL%20Host" in uri and "ops%40scoqi.example" in uri
    secret = uri.split("secret=")[1].split("&")[0]
    with app.app_context():
        staff = db.session.query(StaffUser).one()
        assert staff.email == "ops@scoqi.example" and staff.name == "Olga Ops"
        assert secret not in staff.totp_secret_encrypted
        assert "long enough password" not in staff.password_hash
    again = runner.invoke(args=["staff", "create", "ops@scoqi.example", "--password",
                                "long enough password"])
    assert again.exit_code == 1 and "already exists" in again.output


def test_cli_create_prompts_and_refuses_short_passwords(app):
    runner = app.test_cli_runner()
    short = runner.invoke(args=["staff", "create", "a@scoqi.example", "--password", "short"])
    assert short.exit_code == 1 and "12" in short.output
    bad = runner.invoke(args=["staff", "create", "not-an-email", "--password", "x" * 12])
    assert bad.exit_code == 1 and "invalid email" in bad.output
    prompted = runner.invoke(args=["staff", "create", "b@scoqi.example"],
                             input="prompted password\nprompted password\n")
    assert prompted.exit_code == 0, prompted.output
    assert "otpauth://totp/" in prompted.output
    listed = runner.invoke(args=["staff", "list"])
    assert "b@scoqi.example" in listed.output and "otpauth" not in listed.output


def test_login_needs_password_and_fresh_code(app):
    eve = make_staff(app)
    client = app.test_client()
    assert client.get("/staff/").status_code == 302
    assert client.get("/staff/").headers["Location"].startswith("/staff/login")
    wrong_code = str((int(totp_code(app, eve.secret)) + 1) % 1_000_000).zfill(6)
    assert staff_login(client, app, eve, code=wrong_code).status_code == 401
    assert staff_login(client, app, eve, code="").status_code == 400
    assert staff_login(client, app, eve, password=STAFF_PASSWORD + "x").status_code == 401
    assert _cookie(client) is None
    ok = staff_login(client, app, eve)
    assert ok.status_code == 302 and ok.headers["Location"] == "/staff/"
    header = ok.headers["Set-Cookie"]
    assert "qalitel_staff=" in header and "HttpOnly" in header
    assert "SameSite=Strict" in header and "Path=/staff/" in header
    assert "Max-Age=28800" in header
    page = client.get("/staff/")
    assert page.status_code == 200 and b"Eve Engineer" in page.data
    assert page.headers["Cache-Control"] == "no-store"


def test_replayed_code_is_refused(app, make_app):
    from core.clock import ManualClock, set_clock

    clock = ManualClock()
    set_clock(app, clock)
    eve = make_staff(app)
    code = totp_code(app, eve.secret)
    first = app.test_client()
    assert staff_login(first, app, eve, code=code).status_code == 302
    second = app.test_client()
    assert staff_login(second, app, eve, code=code).status_code == 401
    # an older code than the last one used is refused too; the next step's code works
    assert staff_login(second, app, eve, code=totp_code(app, eve.secret, -1)).status_code == 401
    clock.advance(seconds=30)
    assert staff_login(second, app, eve).status_code == 302


def test_staff_and_tenant_sessions_are_distinct(two_tenants):
    app = two_tenants.app
    eve = make_staff(app)
    client = app.test_client()
    assert login(client, "alpha", two_tenants.a.admin_email, PASSWORD).status_code == 302
    assert client.get("/staff/").status_code == 302  # a tenant admin is not staff
    assert staff_login(client, app, eve).status_code == 302
    assert client.get("/staff/").status_code == 200
    # the staff cookie is scoped to /staff/ and says nothing to the tenant app
    other = app.test_client()
    other.set_cookie("qalitel_staff", _cookie(client).value, path="/")
    assert other.get("/t/alpha/").status_code == 302


def test_tampered_expired_and_foreign_cookies_are_refused(app):
    from core.clock import ManualClock, set_clock

    clock = ManualClock()
    set_clock(app, clock)
    eve = make_staff(app)
    client = app.test_client()
    assert staff_login(client, app, eve).status_code == 302
    value = _cookie(client).value
    forged = app.test_client()
    forged.set_cookie("qalitel_staff", value[:-2] + ("AA" if value[-2:] != "AA" else "BB"),
                      path="/staff/")
    refused = forged.get("/staff/")
    assert refused.status_code == 302 and "/staff/login" in refused.headers["Location"]
    assert "qalitel_staff=;" in refused.headers.get("Set-Cookie", "")
    other_key = URLSafeTimedSerializer("another key", salt="qalitel-staff-session")
    forged.set_cookie("qalitel_staff", other_key.dumps({"s": eve.id, "t": "x", "i": 0}),
                      path="/staff/")
    assert forged.get("/staff/").status_code == 302
    clock.advance(hours=8, seconds=1)
    assert client.get("/staff/").status_code == 302  # 8 hours at most


def test_logout_ends_the_session_everywhere(app):
    eve = make_staff(app)
    client = app.test_client()
    assert staff_login(client, app, eve).status_code == 302
    stolen = _cookie(client).value
    assert client.post("/staff/logout").status_code == 400  # CSRF
    token = csrf_token(client, "/staff/")
    assert client.post("/staff/logout", data={"csrf_token": token}).status_code == 302
    replay = app.test_client()
    replay.set_cookie("qalitel_staff", stolen, path="/staff/")
    assert replay.get("/staff/").status_code == 302


def test_deactivated_staff_cannot_sign_in(app):
    eve = make_staff(app)
    client = app.test_client()
    assert staff_login(client, app, eve).status_code == 302
    result = app.test_cli_runner().invoke(args=["staff", "deactivate", eve.email])
    assert result.exit_code == 0
    assert client.get("/staff/").status_code == 302
    from core.clock import ManualClock, set_clock

    set_clock(app, ManualClock())
    assert staff_login(app.test_client(), app, eve).status_code == 401


def test_logins_are_throttled(app):
    eve = make_staff(app)
    client = app.test_client()
    for _ in range(5):
        assert staff_login(client, app, eve, code="000000").status_code == 401
    assert staff_login(client, app, eve).status_code == 429  # even the right code, for now


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/staff/",
                                    "/t/alpha/", "/staff/\\evil"])
def test_login_next_stays_in_the_console(app, target):
    eve = make_staff(app)
    client = app.test_client()
    token = csrf_token(client, "/staff/login")
    response = client.post("/staff/login", query_string={"next": target}, data={
        "email": eve.email, "password": STAFF_PASSWORD, "code": totp_code(app, eve.secret),
        "csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == "/staff/"


def test_console_shows_operational_data(two_tenants):
    app = two_tenants.app
    eve = make_staff(app)
    client = app.test_client()
    staff_login(client, app, eve)
    page = client.get("/staff/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    for expected in ("Alpha", "Bravo", "active", "Overdue:", "no good backup yet"):
        assert expected in page
    with app.app_context():
        from tenants.registry import Tenant

        tenant = db.session.query(Tenant).filter_by(slug="alpha").one()
        assert tenant.schema_revision and tenant.schema_revision in page
        backend = tenant.backend.value
    detail = client.get("/staff/tenants/alpha").get_data(as_text=True)
    assert backend in detail and ("KiB" in detail or "MiB" in detail)
    assert client.get("/staff/tenants/nosuch").status_code == 404
