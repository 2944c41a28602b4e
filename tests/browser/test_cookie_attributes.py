"""The cookies as Chromium stores them: the one-year ``qalitel_prefs`` (HttpOnly, Lax, scoped
to its tenant's path, kept on logout, deleted by "forget me"), the session cookie (HttpOnly,
Lax, gone on logout), and a tenant's prefs cookie having no effect at another tenant."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import cookie, sign_in, sign_out, switch_language
from tests.conftest import provision

pytestmark = [pytest.mark.browser,
              pytest.mark.parametrize("backend", ["sqlite"], indirect=True)]

YEAR = 365 * 24 * 3600
DAY = 24 * 3600


def _session_data(app, value: str) -> dict:
    """What a session cookie value holds (checked with the app's own signing key)."""
    return dict(app.session_interface.get_signing_serializer(app).loads(value))


def test_cookie_attributes_logout_and_forget(app, password_hash, live_server, new_context):
    alpha = provision(app, "alpha", password_hash)
    context = new_context()
    page = context.new_page()
    page.goto("/t/alpha/login")
    sign_in(page, alpha.user_email)

    prefs = cookie(context, "qalitel_prefs")
    assert prefs is not None
    assert abs(prefs["expires"] - (time.time() + YEAR)) < DAY
    assert prefs["httpOnly"] is True
    assert prefs["sameSite"] == "Lax"
    assert prefs["path"] == "/t/alpha/"
    assert prefs["domain"] == "127.0.0.1"  # host-only: no Domain attribute
    assert prefs["secure"] is False  # plain HTTP here; Secure behind HTTPS

    session = cookie(context, "qalitel_session")
    assert session is not None
    assert session["httpOnly"] is True
    assert session["sameSite"] == "Lax"
    assert "_user_id" in _session_data(app, session["value"])
    assert "qalitel" not in page.evaluate("document.cookie")  # neither is readable by scripts

    with page.expect_response(lambda r: r.request.method == "POST"
                              and r.url == live_server.url("/t/alpha/logout")) as logout:
        sign_out(page)
    assert logout.value.status == 302
    deletions = [h for h in logout.value.headers_array()
                 if h["name"].lower() == "set-cookie" and h["value"].startswith("qalitel_session=")]
    assert deletions, "the logout response does not delete the session cookie"
    assert all("Expires=Thu, 01 Jan 1970" in h["value"] for h in deletions)

    # The login page then starts a new, anonymous session (its CSRF token only): the cookie
    # that carried the login is gone.
    after = cookie(context, "qalitel_session")
    if after is not None:
        assert after["value"] != session["value"]
        assert "_user_id" not in _session_data(app, after["value"])
    kept = cookie(context, "qalitel_prefs")
    assert kept is not None
    assert (kept["path"], kept["httpOnly"], kept["sameSite"]) == ("/t/alpha/", True, "Lax")
    assert abs(kept["expires"] - (time.time() + YEAR)) < DAY
    expect(page.locator("#email")).to_have_value(alpha.user_email)

    page.click('form[action$="/preferences/forget"] button')
    expect(page.locator(".flash.info")).to_be_visible()
    expect(page).to_have_url(live_server.url("/t/alpha/login"))
    assert cookie(context, "qalitel_prefs") is None
    expect(page.locator("#email")).to_have_value("")
    expect(page.locator('form[action$="/preferences/forget"]')).to_have_count(0)


def test_prefs_cookie_of_one_tenant_has_no_effect_at_another(two_tenants, live_server,
                                                             new_context):
    a, b = two_tenants.a, two_tenants.b
    context = new_context()
    page = context.new_page()
    page.goto("/t/alpha/login")
    sign_in(page, a.user_email)
    switch_language(page, "en")
    page.goto("/t/alpha/records/?status=open&severity=minor&per_page=10")
    expect(page.locator("#f-status")).to_have_value("open")
    alpha_prefs = cookie(context, "qalitel_prefs")
    assert alpha_prefs is not None and alpha_prefs["path"] == "/t/alpha/"

    # Path scoping: the browser does not send alpha's cookie to bravo.
    with page.expect_request(live_server.url("/t/bravo/login")) as sent:
        page.goto("/t/bravo/login")
    assert "qalitel_prefs" not in (sent.value.header_value("cookie") or "")
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.locator("#email")).to_have_value("")

    # Injected by hand for the whole host, it reaches bravo and is ignored there.
    context.add_cookies([{"name": "qalitel_prefs", "value": alpha_prefs["value"],
                          "domain": "127.0.0.1", "path": "/", "httpOnly": True,
                          "sameSite": "Lax", "expires": alpha_prefs["expires"]}])
    with page.expect_response(live_server.url("/t/bravo/login")) as answer:
        page.goto("/t/bravo/login")
    assert answer.value.status == 200
    assert f"qalitel_prefs={alpha_prefs['value']}" in (
        answer.value.request.header_value("cookie") or "")
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.locator("#email")).to_have_value("")
    expect(page.locator('form[action$="/preferences/forget"]')).to_have_count(0)

    sign_in(page, b.user_email)
    expect(page).to_have_url(live_server.url("/t/bravo/"))  # not alpha's last page
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    page.click('nav a[href="/t/bravo/records/"]')
    expect(page.locator("#f-status")).to_have_value("")
    expect(page.locator("#f-severity")).to_have_value("")
    expect(page.locator("#per_page")).to_have_value("25")
    expect(page.locator("table tbody tr")).to_have_count(len(b.record_ids))

    # Alpha, for its part, still honours its own cookie.
    page.goto("/t/alpha/records/")
    expect(page.locator("html")).to_have_attribute("lang", "en")
