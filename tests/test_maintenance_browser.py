"""In a real browser (Debian chromium through Playwright), an engineer and a client admin side
by side: request in the console → banner → approval → the engineer reads the data → the admin
revokes → the engineer's next page is refused. SQLite (the flows run on both backends in
test_client_approval.py)."""

from __future__ import annotations

import os
import re
import shutil
import threading
from collections.abc import Iterator

import pyotp
import pytest
from werkzeug.serving import make_server

from core.db import db
from maintenance.models import Grant, GrantStatus
from qalitel.records.models import NonConformity
from tests.conftest import PASSWORD, STAFF_PASSWORD, in_tenant, make_staff, provision

CHROMIUM = "/usr/bin/chromium"
REQUIRE = os.environ.get("QALITEL_REQUIRE_BROWSER", "") in ("1", "true", "yes")
pytestmark = pytest.mark.browser


def _browser_or_skip():
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        if REQUIRE:
            pytest.fail("QALITEL_REQUIRE_BROWSER is set but chromium is not installed")
        pytest.skip("chromium not installed")
    from playwright.sync_api import sync_playwright

    return sync_playwright


@pytest.fixture
def served(make_app, password_hash) -> Iterator[tuple[str, object]]:
    app = make_app("sqlite")
    app.config["MAIL_BACKGROUND"] = False  # no SMTP server here: the send fails, logged
    provision(app, "alpha", password_hash, records=1)
    with in_tenant(app, "alpha") as session:
        session.query(NonConformity).one().title = "BROWSERMARKER title"
        session.commit()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", app
    finally:
        server.shutdown()
        thread.join(10)


def test_request_approve_work_revoke_in_two_browsers(served):
    sync_playwright = _browser_or_skip()
    base, app = served
    engineer = make_staff(app)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            eve = browser.new_context(locale="en-US").new_page()
            ada = browser.new_context(locale="en-US").new_page()
            for page in (eve, ada):
                page.set_default_timeout(15000)

            # the engineer signs in (password + TOTP) and files a request
            eve.goto(f"{base}/staff/login")
            eve.fill("#email", engineer.email)
            eve.fill("#password", STAFF_PASSWORD)
            eve.fill("#code", pyotp.TOTP(engineer.secret).now())
            eve.click("main button[type=submit]")
            eve.wait_for_url(f"{base}/staff/")
            eve.goto(f"{base}/staff/requests/new?tenant=alpha")
            eve.select_option("#tenant", "alpha")
            eve.fill("#reason", "Dashboard totals look wrong (browser test)")
            eve.select_option("#scope", "read-write")
            eve.fill("#hours", "2")
            eve.click("main button[type=submit]")
            eve.wait_for_url(re.compile(r".*/staff/tenants/alpha/requests/[0-9a-f-]{36}$"))
            request_url = eve.url
            public_id = request_url.rsplit("/", 1)[1]
            assert "Open the database" not in eve.content()

            # the client admin sees the banner, and approves read-only for one hour
            ada.goto(f"{base}/t/alpha/login")
            ada.fill("input[name=email]", "admin@alpha.example")
            ada.fill("input[name=password]", PASSWORD)
            ada.click("main form button[type=submit]")
            ada.wait_for_url(f"{base}/t/alpha/")
            banner = ada.locator("#maintenance-pending-banner")
            assert "1 maintenance request awaiting your decision" in banner.inner_text()
            banner.locator("a").click()
            ada.wait_for_url(f"{base}/t/alpha/maintenance/")
            card = ada.locator(f"#request-{public_id}")
            assert "Dashboard totals look wrong" in card.inner_text()
            card.locator("input[name=hours]").fill("1")
            card.locator("select[name=scope]").select_option("read")
            card.locator(".approve-form textarea").fill("Read only, please")
            card.locator(".approve-form button[type=submit]").click()
            ada.wait_for_selector("#active-grants")
            assert "Approved" in ada.locator(".flash").inner_text()
            assert ada.locator("#maintenance-pending-banner").count() == 0

            # the engineer opens the client's data through the console
            eve.goto(request_url)
            eve.click("text=Open the database")
            eve.click("text=nonconformities")
            assert "BROWSERMARKER" in eve.content()
            rows_url = eve.url

            # the admin revokes; the engineer's next page is refused
            ada.locator("#active-grants .revoke-form button").click()
            ada.wait_for_selector("#no-active")
            assert "revoked" in ada.locator(".flash").inner_text().lower()
            response = eve.goto(rows_url)
            assert response is not None and response.status == 403
            assert "BROWSERMARKER" not in eve.content()
            assert "Access refused" in eve.content()
        finally:
            browser.close()
    with app.app_context():
        grant = db.session.query(Grant).one()
        assert grant.status is GrantStatus.REVOKED and grant.revoked_by_name == "Admin alpha"
