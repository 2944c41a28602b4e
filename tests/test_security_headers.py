"""Security headers on every response (pages, error pages, static files), HSTS only behind
HTTPS, and no template or stylesheet that references another host or needs inline code."""

from __future__ import annotations

import re

from qalitel import ROOT
from tests.conftest import PASSWORD, csrf_token, login, provision


def assert_headers(response, url: str, https: bool = False) -> None:
    headers = response.headers
    csp = headers.get("Content-Security-Policy", "")
    directives = {part.strip().split(" ", 1)[0]: part.strip() for part in csp.split(";")}
    assert directives.get("default-src") == "default-src 'self'", url
    assert directives.get("frame-ancestors") == "frame-ancestors 'none'", url
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "http" not in csp, url
    assert headers.get("X-Content-Type-Options") == "nosniff", url
    assert headers.get("Referrer-Policy") in ("same-origin", "strict-origin-when-cross-origin",
                                              "no-referrer"), url
    if https:
        assert headers.get("Strict-Transport-Security", "").startswith("max-age="), url
        assert int(headers["Strict-Transport-Security"].split("=")[1].split(";")[0]) >= 31536000
    else:
        assert "Strict-Transport-Security" not in headers, url


def test_headers_on_pages_errors_and_static_files(two_tenants):
    app = two_tenants.app
    app.config["PROPAGATE_EXCEPTIONS"] = False
    client = app.test_client()
    expected = {
        "/": 200, "/healthz": 200, "/privacy": 200, "/static/app.css": 200,
        "/static/no-such-file.css": 404, "/no-such-page": 404,
        "/t/alpha/login": 200, "/t/alpha/privacy": 200, "/t/nosuch/login": 404,
        "/t/alpha/no-such-page": 404, "/t/alpha/records/": 302,
    }
    for url, status in expected.items():
        response = client.get(url)
        assert response.status_code == status, url
        assert_headers(response, url)
    staff = client.get("/staff/")
    assert staff.status_code < 500
    assert_headers(staff, "/staff/")
    csrf_error = client.post("/t/alpha/login", data={"email": "x@y.z", "password": "x"})
    assert csrf_error.status_code == 400
    assert_headers(csrf_error, "csrf error")
    not_allowed = client.put("/t/alpha/login")
    assert not_allowed.status_code == 405
    assert_headers(not_allowed, "405")
    failed_login = login(client, "alpha", two_tenants.a.user_email, password="wrong")
    assert failed_login.status_code == 401
    assert_headers(failed_login, "401")
    login(client, "alpha", two_tenants.a.user_email)
    for url in ("/t/alpha/", "/t/alpha/records/", "/t/alpha/preferences",
                f"/t/alpha/records/{two_tenants.b.record_ids[-1]}"):
        response = client.get(url)
        assert response.status_code in (200, 404), url
        assert_headers(response, url)
    token = csrf_token(client, "/t/alpha/preferences")
    logout = client.post("/t/alpha/logout", data={"csrf_token": token})
    assert logout.status_code == 302
    assert_headers(logout, "logout")


def test_headers_on_a_server_error(make_app, backend):
    app = make_app(backend)
    app.config["PROPAGATE_EXCEPTIONS"] = False

    def boom():
        raise RuntimeError("boom")

    app.add_url_rule("/boom-for-test", "boom_for_test", boom)
    response = app.test_client().get("/boom-for-test")
    assert response.status_code == 500
    assert_headers(response, "500")


def test_hsts_behind_https_only(make_app, backend, password_hash):
    app = make_app(backend, https=True)
    provision(app, "alpha", password_hash)
    client = app.test_client()
    for url in ("/", "/t/alpha/login", "/static/app.css", "/t/nosuch/login", "/t/alpha/privacy"):
        response = client.get("https://localhost" + url)
        assert response.status_code in (200, 404), url
        assert_headers(response, url, https=True)
    client.environ_base["HTTP_REFERER"] = "https://localhost/t/alpha/login"
    token = csrf_token(client, "https://localhost/t/alpha/login")
    signed_in = client.post("https://localhost/t/alpha/login", data={
        "email": "user@alpha.example", "password": PASSWORD, "csrf_token": token})
    assert signed_in.status_code == 302
    assert_headers(signed_in, "login", https=True)
    for header in signed_in.headers.getlist("Set-Cookie"):
        assert "Secure" in header and "HttpOnly" in header, header


# -- static scans: nothing from another host, nothing inline ------------------------------

TEMPLATES = sorted((ROOT / "templates").rglob("*.html"))
STYLESHEETS = sorted((ROOT / "qalitel" / "static").rglob("*.css"))
EXTERNAL = [
    re.compile(r"""\b(?:src|href|action|srcset|poster|data|formaction)\s*=\s*["']?\s*"""
               r"""(?:https?:)?//""", re.I),
    re.compile(r"""url\(\s*["']?\s*(?:https?:)?//""", re.I),
    re.compile(r"""@import""", re.I),
    re.compile(r"""<(?:script|link|img|iframe|source|embed|object)\b[^>]*\bhttps?://""", re.I),
]
INLINE = [
    re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I),  # inline script
    re.compile(r"<style\b", re.I),  # inline style sheet
    re.compile(r"""\sstyle\s*=\s*["']""", re.I),  # style attribute
    re.compile(r"""\son[a-z]+\s*=\s*["']""", re.I),  # event handler attribute
    re.compile(r"""(?:href|src)\s*=\s*["']\s*javascript:""", re.I),
]


def test_templates_are_found():
    names = {path.relative_to(ROOT / "templates").as_posix() for path in TEMPLATES}
    assert {"base.html", "privacy.html", "auth/login.html"} <= names
    assert STYLESHEETS


def test_no_template_or_stylesheet_references_another_host():
    offenders = []
    for path in [*TEMPLATES, *STYLESHEETS]:
        text = path.read_text(encoding="utf-8")
        for pattern in EXTERNAL:
            for match in pattern.finditer(text):
                line = text.count("\n", 0, match.start()) + 1
                offenders.append(f"{path.relative_to(ROOT)}:{line}: {match.group(0)}")
    assert not offenders, "references to another host:\n" + "\n".join(offenders)


def test_no_inline_script_or_style_in_templates():
    offenders = []
    for path in TEMPLATES:
        text = path.read_text(encoding="utf-8")
        for pattern in INLINE:
            for match in pattern.finditer(text):
                line = text.count("\n", 0, match.start()) + 1
                offenders.append(f"{path.relative_to(ROOT)}:{line}: {match.group(0)}")
    assert not offenders, "inline code the CSP would block:\n" + "\n".join(offenders)


def test_the_scans_catch_what_they_look_for():
    """The patterns above are not vacuous."""
    bad = ['<script src="https://cdn.example/x.js"></script>',
           '<link rel="stylesheet" href="//fonts.example/css">',
           "body { background: url('https://img.example/a.png') }",
           '@import url("fonts.css");', '<img src=http://x.example/a.png>']
    for sample in bad:
        assert any(p.search(sample) for p in EXTERNAL), sample
    good = ['<a href="mailto:protectiondedonnees@scoqi.com">', '<a href="/t/alpha/privacy">',
            "{{ url_for('static', filename='app.css') }}"]
    for sample in good:
        assert not any(p.search(sample) for p in EXTERNAL), sample
    for sample in ["<script>alert(1)</script>", '<div style="color:red">',
                   '<button onclick="x()">', "<style>p{}</style>"]:
        assert any(p.search(sample) for p in INLINE), sample
    assert not any(p.search('<script src="/static/app.js"></script>') for p in INLINE)
