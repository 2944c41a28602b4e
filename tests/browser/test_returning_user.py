"""A returning user: after closing the browser, the next sign-in opens the same environment.

The user works on a record, filters the non-conformity list, picks English and signs out.
A new browser context holding only the cookies that outlive the browser (``qalitel_prefs``)
then shows the login form pre-filled, in English, and signs in to the same filtered list.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import cookie, sign_in, sign_out, switch_language
from tests.conftest import provision

pytestmark = pytest.mark.browser

TITLE = "Burr on housing 42"
FILTERS = {"status": "analysis", "severity": "major", "per_page": "10"}


def _assign_to_the_user(app, record_url: str) -> None:
    """A manager's part, done by the admin: the record is given to the user who wrote it
    (a plain user may not make themselves assignee)."""
    from qalitel.records import service
    from qalitel.records.models import NonConformity
    from qalitel.users.models import Profile, User
    from tests.conftest import in_tenant

    with in_tenant(app, "alpha") as session:
        record = session.get(NonConformity, int(record_url.rsplit("/", 1)[1]))
        admin = session.query(User).filter_by(profile=Profile.ADMIN).first()
        service.update_nonconformity(admin, record, assignee=record.created_by_id)
        session.commit()


def _create_edit_and_advance(page, server, app) -> str:
    """Create a record, edit it, have it assigned to its author, who moves it to analysis;
    returns its URL."""
    page.goto("/t/alpha/records/new")
    page.fill("#title", "Burr on housing")
    page.fill("#description", "Found at incoming inspection.")
    page.select_option("#severity", "minor")
    page.click('form[action$="/records/new"] button[type="submit"]')
    expect(page).to_have_url(re.compile(re.escape(server.url("/t/alpha/records/")) + r"\d+$"))
    record_url = page.url

    page.click('a[href$="/edit"]')
    page.fill("#title", TITLE)
    page.select_option("#severity", "major")
    page.click('form[action$="/edit"] button[type="submit"]')
    expect(page).to_have_url(record_url)
    expect(page.locator("h1")).to_contain_text(TITLE)

    _assign_to_the_user(app, record_url)  # the assignee moves it on
    page.reload()

    page.select_option("#to_status", "analysis")
    page.fill("#comment", "Looking into it")
    page.click('form[action$="/status"] button[type="submit"]')
    # The next step offered after analysis is treatment: the change went through.
    expect(page.locator("#to_status")).to_have_value("treatment")
    return record_url


def _expect_filtered_list(page) -> None:
    expect(page.locator("#f-status")).to_have_value(FILTERS["status"])
    expect(page.locator("#f-severity")).to_have_value(FILTERS["severity"])
    expect(page.locator("#per_page")).to_have_value(FILTERS["per_page"])
    rows = page.locator("table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text(TITLE)


def test_returning_user_gets_the_same_environment(app, password_hash, live_server, new_context):
    server = live_server
    alpha = provision(app, "alpha", password_hash, records=3)
    context = new_context()
    page = context.new_page()

    page.goto("/t/alpha/login")
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.locator("#email")).to_have_value("")
    sign_in(page, alpha.user_email)
    expect(page).to_have_url(server.url("/t/alpha/"))

    _create_edit_and_advance(page, server, app)

    page.click('nav a[href="/t/alpha/records/"]')
    expect(page).to_have_url(server.url("/t/alpha/records/"))
    expect(page.locator("table tbody tr")).to_have_count(4)
    page.select_option("#f-status", FILTERS["status"])
    page.select_option("#f-severity", FILTERS["severity"])
    page.select_option("#per_page", FILTERS["per_page"])
    page.click('form.filters button[type="submit"]')
    expect(page).to_have_url(re.compile(r"status=analysis"))
    _expect_filtered_list(page)
    list_url = page.url
    query = parse_qs(urlsplit(list_url).query)
    assert {key: query[key] for key in FILTERS} == {k: [v] for k, v in FILTERS.items()}

    switch_language(page, "en")
    expect(page).to_have_url(list_url)
    expect(page.locator("h1")).to_have_text("Non-conformities")
    _expect_filtered_list(page)

    sign_out(page)
    expect(page).to_have_url(server.url("/t/alpha/login"))
    expect(page.locator("html")).to_have_attribute("lang", "en")

    # Restarting the browser drops session cookies: keep only those with an expiry.
    state = context.storage_state()
    kept = [c for c in state["cookies"] if c["expires"] > 0]
    names = {c["name"] for c in kept}
    assert "qalitel_prefs" in names
    assert "qalitel_session" not in names
    context.close()

    again = new_context(storage_state={"cookies": kept, "origins": state["origins"]})
    assert cookie(again, "qalitel_session") is None
    page = again.new_page()
    page.goto("/t/alpha/login")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#email")).to_have_value(alpha.user_email)
    expect(page.locator("#password")).to_have_value("")
    sign_in(page)  # the pre-filled email, the password typed again

    expect(page).to_have_url(list_url)
    expect(page.locator("html")).to_have_attribute("lang", "en")
    _expect_filtered_list(page)

    # The bare list opens with the saved filters and page size too.
    page.click('nav a[href="/t/alpha/records/"]')
    expect(page).to_have_url(server.url("/t/alpha/records/"))
    _expect_filtered_list(page)
