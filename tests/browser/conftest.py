"""Browser fixtures: the app served in-process on a loopback port, driven by Debian's Chromium
through Playwright.

``playwright install`` cannot download a browser here, so Chromium is launched from
``/usr/bin/chromium``. Without it these tests skip, unless ``QALITEL_REQUIRE_BROWSER=1`` (set
by CI), which turns the skip into a failure.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import WSGIRequestHandler, make_server

from tests.conftest import PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
REQUIRE_BROWSER = os.environ.get("QALITEL_REQUIRE_BROWSER", "") in ("1", "true", "yes")
# Every context asks for French first, like the default locale: an English page then means
# the user's explicit choice was applied.
LOCALE = "fr-FR"
# Bounds a page that never comes (a failing test), not an expectation of speed: generous, so
# that two busy cores never fail a test that would pass.
TIMEOUT_MS = 60_000


def require_browser() -> None:
    """Skip (or, under QALITEL_REQUIRE_BROWSER=1, fail) when Chromium or Playwright is absent."""
    missing = None
    if not CHROMIUM.exists():
        missing = f"{CHROMIUM} not found"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            missing = "playwright is not installed"
    if missing:
        if REQUIRE_BROWSER:
            pytest.fail(f"browser required (QALITEL_REQUIRE_BROWSER=1) but {missing}")
        pytest.skip(missing)


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    """One headless Chromium for the browser tests, closed after the last of them."""
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


class _QuietHandler(WSGIRequestHandler):
    """No access log line per request (errors are still logged)."""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


@dataclass
class LiveServer:
    app: Flask
    host: str
    port: int

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def netloc(self) -> str:
        return f"{self.host}:{self.port}"

    def url(self, path: str) -> str:
        return self.origin + path


@contextmanager
def serve(app: Flask) -> Iterator[LiveServer]:
    """Serve ``app`` on a free loopback port from a daemon thread; shut down after."""
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                              name="qalitel-live-server", daemon=True)
    thread.start()
    try:
        yield LiveServer(app=app, host="127.0.0.1", port=server.server_port)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=60)


@pytest.fixture
def live_server(app: Flask, browser) -> Iterator[LiveServer]:
    """The test's ``app`` (so also ``two_tenants.app``) served over real HTTP.

    Depends on ``browser`` so that a missing browser skips before anything is provisioned."""
    with serve(app) as server:
        yield server


@dataclass
class Contexts:
    """Factory of browser contexts on the live server; closes them and reports 5xx after."""

    browser: Any
    server: LiveServer
    opened: list[Any] = field(default_factory=list)
    server_errors: list[str] = field(default_factory=list)

    def __call__(self, **options: Any) -> Any:
        options.setdefault("locale", LOCALE)
        options.setdefault("base_url", self.server.origin)
        context = self.browser.new_context(**options)
        context.set_default_timeout(TIMEOUT_MS)
        context.on("response", self._check)
        self.opened.append(context)
        return context

    def _check(self, response: Any) -> None:
        if response.status >= 500:
            self.server_errors.append(f"{response.status} {response.request.method} "
                                      f"{response.url}")


@pytest.fixture
def new_context(browser, live_server: LiveServer) -> Iterator[Callable[..., Any]]:
    """``new_context(**options)``: a fresh browser context (French locale, base URL of the
    live server); ``storage_state=`` starts it with saved cookies."""
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    contexts = Contexts(browser=browser, server=live_server)
    yield contexts
    for context in contexts.opened:
        context.close()
    assert not contexts.server_errors, f"server errors: {contexts.server_errors}"


# ---------------------------------------------------------------- helpers


def sign_in(page: Any, email: str | None = None, password: str = PASSWORD) -> None:
    """Submit the login form of the page (already at ``/t/<slug>/login``) and wait until the
    signed-in page is there. ``email=None`` keeps what the form shows (pre-filled)."""
    from playwright.sync_api import expect

    if email is not None:
        page.fill("#email", email)
    page.fill("#password", password)
    page.click('form[action*="/login"] button[type="submit"]')
    expect(page.locator("form.signout")).to_be_visible()


def sign_out(page: Any) -> None:
    """Click "Sign out" in the page header and wait for the login page."""
    from playwright.sync_api import expect

    page.click("form.signout button")
    expect(page.locator("#password")).to_be_visible()


def switch_language(page: Any, code: str) -> None:
    from playwright.sync_api import expect

    page.click(f'form.lang-switch button[value="{code}"]')
    expect(page.locator("html")).to_have_attribute("lang", code)


def cookie(context: Any, name: str) -> dict[str, Any] | None:
    """The cookie ``name`` as the browser stores it (None when it has none)."""
    found = [c for c in context.cookies() if c["name"] == name]
    assert len(found) <= 1, f"several {name} cookies: {found}"
    return found[0] if found else None
