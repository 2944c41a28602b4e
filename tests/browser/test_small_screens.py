"""Small screens: at 375×812 CSS pixels (a phone) no main page is wider than the screen, for a
client user, a client admin and a SCOQI engineer; lists are cards, the filters and the main
menu are folded, and the links and buttons of lists are big enough to touch. At 1280 px the
same lists are still tables. Screenshots of every page go to a temporary folder."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Contexts, require_browser, serve, sign_in
from tests.browser.small_world import SLUG, SmallWorld, build_small_world
from tests.conftest import STAFF_PASSWORD, totp_code

pytestmark = pytest.mark.browser

PHONE = {"width": 375, "height": 812}
DESKTOP = {"width": 1280, "height": 900}
TABLET = {"width": 768, "height": 1024}
TOUCH_PX = 40
T = f"/t/{SLUG}"

# What stands out of the page (for the failure message): elements reaching past the viewport,
# outside any scrolling box of their own.
MEASURE = """() => {
  const inner = window.innerWidth;
  const wide = [];
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.width && r.right > inner + 0.5 && !el.closest('.scroll')) {
      wide.push(`${el.tagName.toLowerCase()}.${el.className} ${Math.round(r.right)}px`);
    }
  }
  return {doc: document.documentElement.scrollWidth, body: document.body.scrollWidth,
          inner, wide: wide.slice(-5)};
}"""
SMALL_TARGETS = """(min) => [...document.querySelectorAll(
    'main table.cards a, main table.cards button, main .pager a, header.top a, header.top button')]
  .filter(el => el.getClientRects().length && getComputedStyle(el).visibility !== 'hidden')
  .map(el => [el.textContent.trim().slice(0, 40), el.getBoundingClientRect().height])
  .filter(([, h]) => h < min)"""


@pytest.fixture(scope="module")
def world(make_module_app, password_hash) -> SmallWorld:
    require_browser()
    return build_small_world(make_module_app("sqlite"), password_hash)


@pytest.fixture(scope="module")
def server(world, browser) -> Iterator[Any]:
    with serve(world.app) as live:
        yield live


@pytest.fixture
def contexts(browser, server) -> Iterator[Contexts]:
    expect.set_options(timeout=60_000)
    made = Contexts(browser=browser, server=server)
    yield made
    for context in made.opened:
        context.close()
    assert not made.server_errors, f"server errors: {made.server_errors}"


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("small-screens")


def phone(contexts: Contexts, viewport: dict[str, int] = PHONE) -> Any:
    # Not ``is_mobile``: a mobile viewport may zoom out to fit a page wider than the screen,
    # which would hide the very overflow measured here.
    return contexts(viewport=viewport, has_touch=viewport is PHONE).new_page()


def check_fits(page: Any, path: str, status: int, shots: Path, name: str) -> None:
    """Open ``path`` and check that nothing is wider than the viewport."""
    response = page.goto(path)
    assert response is not None and response.status == status, (path, response and
                                                                 response.status)
    expect(page.locator("footer.site-footer")).to_be_visible()
    page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
    size = page.evaluate(MEASURE)
    assert size["inner"] in (PHONE["width"], TABLET["width"], DESKTOP["width"]), size
    assert size["doc"] <= size["inner"] and size["body"] <= size["inner"], (path, size)
    lang = page.locator("form.lang-switch").bounding_box()
    assert lang is not None and lang["x"] + lang["width"] <= size["inner"], path


def check_cards(page: Any, path: str) -> None:
    """The page's lists are cards: their cells are blocks, with big enough targets."""
    cells = page.locator("main table.cards > tbody > tr > td[data-label]")
    assert cells.count(), f"{path}: no list"
    assert cells.first.evaluate("td => getComputedStyle(td).display") in ("block", "grid"), path
    small = page.evaluate(SMALL_TARGETS, TOUCH_PX)
    assert small == [], f"{path}: targets under {TOUCH_PX} px: {small}"


def check_folded(page: Any, path: str) -> None:
    fold = page.locator("details.filters-fold")
    expect(fold).to_have_count(1)
    assert fold.get_attribute("open") is None, path
    expect(page.locator("#q")).to_be_hidden()
    expect(fold.locator("summary")).to_be_visible()


def visit(page: Any, pages: dict[str, tuple[str, int, str]], shots: Path, role: str) -> None:
    """``pages``: name → (path, status, what to check: "list", "filters" or "")."""
    for name, (path, status, kind) in pages.items():
        check_fits(page, path, status, shots, f"{role}-{name}")
        if kind in ("list", "filters"):
            check_cards(page, path)
        if kind == "filters":
            check_folded(page, path)
        if page.locator("details.menu").count():
            assert page.locator("details.menu").get_attribute("open") is None, path
            expect(page.locator("form.signout button")).to_be_visible()


def sign_in_staff(page: Any, world: SmallWorld) -> None:
    page.goto("/staff/login")
    page.fill("#email", world.staff.email)
    page.fill("#password", STAFF_PASSWORD)
    page.fill("#code", totp_code(world.app, world.staff.secret))
    page.click("main button[type=submit]")
    expect(page.locator("button.staff-logout")).to_be_visible()


def test_client_user_pages_fit_a_phone(world, contexts, shots):
    page = phone(contexts)
    page.goto(f"{T}/login")
    sign_in(page, world.user_email)
    record, action = world.records["first"], world.actions["first"]
    visit(page, {
        "dashboard": (f"{T}/", 200, ""),
        "records": (f"{T}/records/", 200, "filters"),
        "record": (f"{T}/records/{record}", 200, "list"),
        "record-form": (f"{T}/records/new", 200, ""),
        "record-edit": (f"{T}/records/{record}/edit", 200, ""),
        "actions": (f"{T}/actions/", 200, "filters"),
        "action": (f"{T}/actions/{action}", 200, ""),
        "action-form": (f"{T}/actions/new", 200, ""),
        "preferences": (f"{T}/preferences", 200, ""),
        "profile": (f"{T}/profile", 200, ""),
        "my-data": (f"{T}/my-data", 200, ""),
        "privacy": (f"{T}/privacy", 200, ""),
        "not-found": (f"{T}/no-such-page", 404, ""),
        "record-not-found": (f"{T}/records/999999", 404, ""),
    }, shots, "user")


def test_client_admin_pages_fit_a_phone(world, contexts, shots):
    page = phone(contexts)
    page.goto(f"{T}/login")
    sign_in(page, world.admin_email)
    expect(page.locator(".decision-banner")).to_be_visible()  # a request awaits a decision
    visit(page, {
        "dashboard": (f"{T}/", 200, ""),
        "records": (f"{T}/records/", 200, "filters"),
        "record": (f"{T}/records/{world.records['first']}", 200, "list"),
        "actions": (f"{T}/actions/", 200, "filters"),
        "folders": (f"{T}/folders/", 200, "list"),
        "folder": (f"{T}/folders/{world.folders['hr']}", 200, ""),
        "users": (f"{T}/users/", 200, "list"),
        "user-edit": (f"{T}/users/{world.users['user']}", 200, ""),
        "user-new": (f"{T}/users/new", 200, ""),
        "groups": (f"{T}/users/groups/", 200, "list"),
        "group": (f"{T}/users/groups/{world.groups['quality']}", 200, ""),
        "backups": (f"{T}/admin/backups/", 200, "list"),
        "maintenance": (f"{T}/maintenance/", 200, "list"),
        "access-log": (f"{T}/maintenance/log", 200, "list"),
        "export": (f"{T}/admin/export", 200, ""),
        "deletion-requests": (f"{T}/erasure-requests/", 200, ""),
        "my-data": (f"{T}/my-data", 200, ""),
        "preferences": (f"{T}/preferences", 200, ""),
        "analysis": (f"{T}/records/{world.records['first']}/analysis", 200, ""),
        "lists": (f"{T}/lists/", 200, ""),
        "workflow": (f"{T}/admin/workflow", 200, ""),
        "notifications": (f"{T}/admin/notifications/", 200, ""),
        "branding": (f"{T}/admin/branding", 200, ""),
    }, shots, "admin")


def test_engineer_console_fits_a_phone(world, contexts, shots):
    page = phone(contexts)
    sign_in_staff(page, world)
    grant = world.grant_id
    visit(page, {
        "console": ("/staff/", 200, "list"),
        "closures": ("/staff/closures", 200, ""),
        "request-new": ("/staff/requests/new", 200, ""),
        "request": (f"/staff/tenants/{SLUG}/requests/{world.request_id}", 200, ""),
        "tenant": (f"/staff/tenants/{SLUG}", 200, "list"),
        "grant": (f"/staff/grants/{grant}/", 200, ""),
        "rows": (f"/staff/grants/{grant}/tables/nonconformities", 200, "list"),
        "row": (f"/staff/grants/{grant}/tables/nonconformities/{world.records['first']}",
                200, ""),
    }, shots, "staff")


def test_signed_out_pages_fit_a_phone(world, contexts, shots):
    page = phone(contexts)
    visit(page, {
        "login": (f"{T}/login", 200, ""),
        "forgot": (f"{T}/password/forgot", 200, ""),
        "unknown-tenant": ("/t/nosuch/login", 404, ""),
        "home": ("/", 200, ""),
        "platform-privacy": ("/privacy", 200, ""),
        "staff-login": ("/staff/login", 200, ""),
    }, shots, "anonymous")


def test_the_menu_folds_and_opens_on_a_phone(world, contexts, shots):
    page = phone(contexts)
    page.goto(f"{T}/login")
    sign_in(page, world.admin_email)
    menu = page.locator("details.menu")
    link = menu.locator('nav a[href$="/users/"]')
    expect(link).to_be_hidden()
    menu.locator("summary").click()
    expect(link).to_be_visible()
    page.screenshot(path=str(shots / "admin-menu-open.png"))
    box = menu.locator("nav").bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    small = [h for h in menu.locator("nav a").evaluate_all(
        "links => links.map(a => a.getBoundingClientRect().height)") if h < TOUCH_PX]
    assert small == []
    link.click()
    expect(page).to_have_url(re.compile(r"/users/$"))


def test_filters_unfold_and_count_what_is_active(world, contexts, shots):
    page = phone(contexts)
    page.goto(f"{T}/login")
    sign_in(page, world.user_email)
    page.goto(f"{T}/records/")
    fold = page.locator("details.filters-fold")
    expect(fold.locator("summary")).not_to_contain_text("1")  # nothing active: no count
    fold.locator("summary").click()
    expect(page.locator("#q")).to_be_visible()
    page.fill("#q", "carter")
    page.select_option("#f-severity", "minor")
    page.click("form.filters button[type=submit]")
    expect(page).to_have_url(re.compile(r"severity=minor"))
    # Filters in use: the block comes unfolded, its summary says how many.
    assert fold.get_attribute("open") is not None
    expect(fold.locator("summary")).to_have_text(re.compile(r"Filtres\s+2\s+actifs"))
    page.screenshot(path=str(shots / "user-records-filtered.png"), full_page=True)
    size = page.evaluate(MEASURE)
    assert size["doc"] <= size["inner"], size
    # Reset: nothing active any more, folded again.
    page.click("form.filters a.button.secondary")
    expect(page.locator("#q")).to_be_hidden()
    assert fold.get_attribute("open") is None


@pytest.mark.parametrize("width", [TABLET["width"], DESKTOP["width"]])
def test_tables_stay_tables_on_a_wide_screen(world, contexts, shots, width):
    page = phone(contexts, {"width": width, "height": DESKTOP["height"]})
    page.goto(f"{T}/login")
    sign_in(page, world.admin_email)
    for name, path in {"records": f"{T}/records/", "actions": f"{T}/actions/",
                       "users": f"{T}/users/", "record": f"{T}/records/{world.records['first']}",
                       "maintenance": f"{T}/maintenance/"}.items():
        check_fits(page, path, 200, shots, f"wide{width}-{name}")
        cell = page.locator("main table.cards > tbody > tr > td[data-label]").first
        assert cell.evaluate("td => getComputedStyle(td).display") == "table-cell", path
        expect(page.locator("main table.cards > thead th").first).to_be_visible()
        expect(page.get_by_role("navigation").get_by_role("link", name="Utilisateurs")
               ).to_be_visible()
        expect(page.locator("details.menu > summary")).to_be_hidden()
    # Wide screens show the filters, even with none active, and no summary to unfold them.
    page.goto(f"{T}/records/")
    expect(page.locator("#q")).to_be_visible()
    expect(page.locator("details.filters-fold > summary")).to_be_hidden()
