"""One rule per kind of input: the staff console, provisioning, the preference cookie and the
maintenance door use :mod:`core.validation` and :mod:`tenants.engines`, and hostile values are
refused the same way everywhere."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from core.db import db
from maintenance import access
from maintenance.models import AccessLogEntry, Grant, StaffUser
from qalitel import prefs
from tests.conftest import (
    STAFF_PASSWORD,
    csrf_token,
    grant_for_test,
    in_tenant,
    staff_login,
    totp_code,
)

HOSTILE_TARGETS = [
    "//evil.example/", "/\\evil.example", "\\\\evil.example", "javascript:alert(1)",
    "https://evil.example{prefix}", "{prefix}\x00x", "{prefix}\x07bell", "{prefix}a\r\nX: y",
    "{prefix}" + "a" * 3000, "{prefix}/evil.example", "{prefix}../bravo/", "{prefix}a/../..",
    "{prefix}\u202eevil", "{prefix}#frag", " {prefix}",
]


def _targets(prefix: str) -> list[str]:
    return [t.replace("{prefix}", prefix) for t in HOSTILE_TARGETS]


@pytest.mark.parametrize("target", _targets("/t/alpha/"))
def test_the_preference_cookie_keeps_no_hostile_path(target):
    assert prefs._clean_path(target, "alpha") is None


def test_the_preference_cookie_keeps_local_paths():
    assert prefs._clean_path("/t/alpha/records/?status=open&page=2", "alpha") == \
        "/t/alpha/records/?status=open&page=2"
    assert prefs._clean_path("/t/bravo/records/", "alpha") is None
    assert prefs._clean_path("/t/alpha/" + "a" * prefs.MAX_PATH, "alpha") is None


def test_the_language_switch_never_redirects_away(two_tenants):
    client = two_tenants.app.test_client()
    token = csrf_token(client, "/t/alpha/login")
    for target in _targets("/t/alpha/"):
        response = client.post("/t/alpha/language",
                               data={"lang": "fr", "csrf_token": token, "next": target})
        assert response.status_code == 302, target
        assert response.headers["Location"].endswith("/t/alpha/login"), target
    kept = client.post("/t/alpha/language", data={"lang": "en", "csrf_token": token,
                                                  "next": "/t/alpha/privacy"})
    assert kept.headers["Location"].endswith("/t/alpha/privacy")


def test_the_staff_login_never_redirects_away(maint_world):
    world, app = maint_world, maint_world.app
    client = app.test_client()
    for target in [*_targets("/staff/"), "/staff/grants/1/", "/t/alpha/"]:
        token = csrf_token(client, "/staff/login")
        world.clock.advance(seconds=30)  # a TOTP code works once
        response = client.post("/staff/login", query_string={"next": target}, data={
            "email": world.eve.email, "password": STAFF_PASSWORD, "csrf_token": token,
            "code": totp_code(app, world.eve.secret)})
        assert response.status_code == 302, target
        expected = target if target == "/staff/grants/1/" else "/staff/"
        assert response.headers["Location"].endswith(expected), (target, response.headers)
        client.delete_cookie("qalitel_staff", path="/staff/")


@pytest.mark.parametrize("email", [
    "ops@localhost", "x" * 65 + "@scoqi.example", "ops@scoqi.example\nBcc: x@evil.example",
    "ops\x00@scoqi.example", "ops@-scoqi.example", "", "a@" + "b" * 260 + ".example"])
def test_staff_emails_follow_the_one_rule(app, email):
    from maintenance.staff import StaffError, create_staff

    with app.app_context():
        with pytest.raises(StaffError, match="invalid email"):
            create_staff(email, "Olga Ops", STAFF_PASSWORD)
        assert db.session.query(StaffUser).count() == 0


@pytest.mark.parametrize("name", ["", "  ", "x" * 201, "Olga\x00", "Olga\nOps", "Olga\u202e",
                                  "Olga\u200b", "Ol\x85ga"])
def test_staff_names_follow_the_one_rule(app, name):
    from maintenance.staff import StaffError, create_staff

    with app.app_context():
        with pytest.raises(StaffError, match="name"):
            create_staff("olga@scoqi.example", name, STAFF_PASSWORD)
        assert db.session.query(StaffUser).count() == 0
        staff, _uri = create_staff("OLGA@scoqi.example", "Olga Öps — SCOQI", STAFF_PASSWORD)
        assert (staff.email, staff.name) == ("olga@scoqi.example", "Olga Öps — SCOQI")


def test_staff_table_pages_take_only_32_bit_page_numbers(maint_world):
    world, app = maint_world, maint_world.app
    grant_id = grant_for_test(app, world.request("alpha"))
    client = app.test_client()
    assert staff_login(client, app, world.eve).status_code == 302
    url = f"/staff/grants/{grant_id}/tables/nonconformities"
    for raw in ("²", "٣", "-1", "0", "1.5", "9" * 11, "2147483648", "x", ""):
        response = client.get(url, query_string={"page": raw})
        assert response.status_code == 200, raw
        assert world.marker in response.get_data(as_text=True), raw
    # a page past the end shows the last one, as every other list does
    far = client.get(url, query_string={"page": "2147483647"})
    assert far.status_code == 200 and world.marker in far.get_data(as_text=True)
    with app.app_context():
        pages = [e.detail.get("page") for e in db.session.query(AccessLogEntry)
                 .filter(AccessLogEntry.event == "view").order_by(AccessLogEntry.seq)]
    assert pages[-1] == 2147483647 and set(pages[:-1]) == {1}


def test_the_door_refuses_a_database_that_is_not_the_tenants(maint_world):
    """The door runs the app's identity check on every connection, on both backends."""
    world, app = maint_world, maint_world.app
    grant_id = grant_for_test(app, world.request("alpha"))
    with in_tenant(app, "alpha") as session:  # alpha's database now claims to be bravo's
        session.execute(text("UPDATE tenant_identity SET slug = 'bravo'"))
        session.commit()
    with app.app_context():
        grant, eve = db.session.get(Grant, grant_id), db.session.get(StaffUser, world.eve.id)
        with pytest.raises(access.AccessDenied, match="does not belong"):
            access.open_session(grant, eve)
        events = [(e.event, e.detail.get("error")) for e in db.session.query(AccessLogEntry)
                  .order_by(AccessLogEntry.seq)]
    assert events[-2:] == [("session_start", None), ("session_end", "not this tenant's database")]


def test_a_staff_password_with_a_nul_opens_nothing(maint_world):
    from maintenance.staff import StaffError, create_staff

    world, app = maint_world, maint_world.app
    client = app.test_client()
    refused = staff_login(client, app, world.eve, password=STAFF_PASSWORD + "\x00")
    assert refused.status_code != 302 and client.get_cookie("qalitel_staff", path="/staff/") \
        is None
    world.clock.advance(seconds=30)
    assert staff_login(client, app, world.eve).status_code == 302
    with app.app_context(), pytest.raises(StaffError, match="NUL"):
        create_staff("nul@scoqi.example", "Nul", STAFF_PASSWORD + "\x00")


@pytest.mark.parametrize("value", ["a\x00b", "a\x1fb", "a\x7fb", "a\x85b", "a\u202eb",
                                   "a\u200bb", "a\u2028b", "a\tb", "x" * 121])
def test_the_preference_cookie_keeps_no_control_character(value):
    assert prefs._clean_str(value) is None
    assert prefs._clean_str("Société — qualité ✓") == "Société — qualité ✓"
