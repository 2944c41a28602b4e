"""Nothing is sent to third parties: every request the main pages make goes to the app's own
host and port, and no page breaks its Content-Security-Policy (no inline script or style,
no foreign asset)."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import sign_in
from tests.conftest import provision

pytestmark = [pytest.mark.browser,
              pytest.mark.parametrize("backend", ["sqlite"], indirect=True)]

# Runs before any page script, whatever the CSP: records the violations the page reports.
WATCH_CSP = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`);
});
"""
PROBE = "/__csp_probe__"
PROBE_CSP = "default-src 'self'; style-src 'self'"
PROBE_HTML = ("<!doctype html><html><head><style>p{color:red}</style></head>"
              "<body><p>x</p></body></html>")


@dataclass
class Watch:
    """Every request and every CSP complaint of a browser context."""

    requests: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def attach(self, context, page) -> None:
        context.on("request", lambda request: self.requests.append(request.url))
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    def _console(self, message) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            self.console.append(message.text)

    def reset(self) -> None:
        self.requests.clear()
        self.console.clear()
        self.errors.clear()


def _violations(page) -> list[str]:
    return page.evaluate("window.__cspViolations")


def test_the_detectors_see_a_violation(live_server, new_context):
    """The watch used below is not blind: a page with an inline style under a strict CSP (a
    fake page answered by the browser's router, never by the app) is caught."""
    context = new_context()
    context.add_init_script(WATCH_CSP)
    page = context.new_page()
    watch = Watch()
    watch.attach(context, page)
    page.route(live_server.url(PROBE), lambda route: route.fulfill(
        status=200, content_type="text/html", body=PROBE_HTML,
        headers={"Content-Security-Policy": PROBE_CSP}))
    page.goto(PROBE)
    page.wait_for_function("window.__cspViolations.length > 0")
    assert any(v.startswith("style-src") for v in _violations(page))
    expect(page.locator("p")).to_have_text("x")
    assert watch.console, "Chromium reported no CSP violation on the console"
    assert watch.requests == [live_server.url(PROBE)]


def test_main_pages_request_only_their_own_host(app, password_hash, live_server, new_context):
    alpha = provision(app, "alpha", password_hash, records=2)
    record = alpha.record_ids[0]
    context = new_context()
    context.add_init_script(WATCH_CSP)
    page = context.new_page()
    watch = Watch()
    watch.attach(context, page)
    seen: set[str] = set()

    def check(path: str, status: int) -> None:
        response = page.goto(path)
        assert response is not None and response.status == status, path
        expect(page.locator("footer.site-footer")).to_be_visible()
        assert watch.requests, path
        foreign = [url for url in watch.requests
                   if urlsplit(url).scheme != "http" or urlsplit(url).netloc != live_server.netloc]
        assert not foreign, f"{path} requested another host: {foreign}"
        assert _violations(page) == [], path
        assert watch.console == [], path
        assert watch.errors == [], path
        seen.update(urlsplit(url).path for url in watch.requests)
        watch.reset()

    check("/", 200)
    check("/privacy", 200)
    check("/t/alpha/login", 200)
    sign_in(page, alpha.admin_email)
    watch.reset()
    pages = {
        "/t/alpha/": 200,  # dashboard
        "/t/alpha/records/": 200,
        f"/t/alpha/records/{record}": 200,
        "/t/alpha/records/new": 200,
        "/t/alpha/actions/": 200,
        "/t/alpha/folders/": 200,
        "/t/alpha/lists/": 200,
        f"/t/alpha/records/{record}/analysis": 200,
        "/t/alpha/users/": 200,
        "/t/alpha/profile": 200,
        "/t/alpha/preferences": 200,
        "/t/alpha/privacy": 200,
        "/t/alpha/logout": 200,  # the sign-out confirmation
        "/t/alpha/no-such-page": 404,
        "/t/nosuch/login": 404,  # unknown tenant
    }
    for path, status in pages.items():
        check(path, status)
    assert "/static/app.css" in seen  # the watch saw the page's own assets
