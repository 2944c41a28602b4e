"""French by default, English on request: explicit choice (preference cookie / session),
then Accept-Language, then French; a language switch on every page; complete catalogue."""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from itsdangerous import URLSafeTimedSerializer

from qalitel import ROOT, prefs
from qalitel.i18n import compile_catalogs
from tests.conftest import csrf_token, login

PO = ROOT / "qalitel" / "translations" / "fr" / "LC_MESSAGES" / "messages.po"
SWITCH = re.compile(r'<form method="post" action="([^"]+)" class="inline lang-switch"')


def html_lang(response) -> str:
    return re.search(r'<html lang="([a-z]+)"', response.get_data(as_text=True)).group(1)


def test_french_by_default(shared_two_tenants):
    two_tenants = shared_two_tenants  # read-only: the module's world
    client = two_tenants.app.test_client()
    page = client.get("/t/alpha/login")
    assert html_lang(page) == "fr"
    body = page.get_data(as_text=True)
    assert "Se connecter" in body and "Mot de passe" in body
    assert "Sign in" not in body


def test_accept_language_english_is_honoured(shared_two_tenants):
    two_tenants = shared_two_tenants  # read-only: the module's world
    client = two_tenants.app.test_client()
    page = client.get("/t/alpha/login", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert html_lang(page) == "en" and "Sign in" in page.get_data(as_text=True)
    other = client.get("/t/alpha/login", headers={"Accept-Language": "de-DE,de;q=0.9"})
    assert html_lang(other) == "fr"  # neither fr nor en: French
    prefer_fr = client.get("/t/alpha/login", headers={"Accept-Language": "fr;q=0.9,en;q=0.5"})
    assert html_lang(prefer_fr) == "fr"


def test_explicit_choice_beats_accept_language_and_survives_logout(two_tenants):
    app = two_tenants.app
    client = app.test_client()
    token = csrf_token(client, "/t/alpha/login")
    switched = client.post("/t/alpha/language",
                           data={"lang": "en", "next": "/t/alpha/login", "csrf_token": token})
    assert switched.status_code == 302 and switched.headers["Location"].endswith("/t/alpha/login")
    cookie = [h for h in switched.headers.getlist("Set-Cookie")
              if h.startswith(prefs.COOKIE + "=")]
    assert cookie and "Path=/t/alpha/" in cookie[0]
    value = cookie[0].split(";")[0].split("=", 1)[1]
    data = URLSafeTimedSerializer(app.secret_key, salt=prefs.SALT).loads(value)
    assert data["lang"] == "en" and data["tenant"] == "alpha"
    page = client.get("/t/alpha/login", headers={"Accept-Language": "fr"})
    assert html_lang(page) == "en"
    login(client, "alpha", two_tenants.a.user_email)
    assert html_lang(client.get("/t/alpha/")) == "en"
    token = csrf_token(client, "/t/alpha/preferences")
    assert client.post("/t/alpha/logout", data={"csrf_token": token}).status_code == 302
    assert html_lang(client.get("/t/alpha/login")) == "en"
    # the choice belongs to alpha only
    assert html_lang(client.get("/t/bravo/login")) == "fr"
    # and back to French
    token = csrf_token(client, "/t/alpha/login")
    client.post("/t/alpha/language", data={"lang": "fr", "csrf_token": token})
    assert html_lang(client.get("/t/alpha/login", headers={"Accept-Language": "en"})) == "fr"


def test_language_switch_refuses_bad_input(two_tenants):
    client = two_tenants.app.test_client()
    assert client.post("/t/alpha/language", data={"lang": "en"}).status_code == 400  # CSRF
    token = csrf_token(client, "/t/alpha/login")
    response = client.post("/t/alpha/language", data={
        "lang": "de", "next": "https://evil.example/", "csrf_token": token})
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/t/alpha/login")
    assert not [h for h in response.headers.getlist("Set-Cookie") if h.startswith(prefs.COOKIE)]
    other = client.post("/t/alpha/language", data={
        "lang": "en", "next": "/t/bravo/records/", "csrf_token": token})
    assert other.headers["Location"].endswith("/t/alpha/login")


def test_language_switch_on_every_page(two_tenants):
    client = two_tenants.app.test_client()
    signed_out = {
        "/t/alpha/login": "/t/alpha/language",
        "/t/alpha/privacy": "/t/alpha/language",
        "/t/alpha/no-such-page": "/t/alpha/language",  # no route: the tenant's cookie, still
        "/t/nosuch/login": "/language",
        "/privacy": "/language",
        "/": "/language",
    }
    for url, action in signed_out.items():
        match = SWITCH.search(client.get(url).get_data(as_text=True))
        assert match and match.group(1) == action, url
    login(client, "alpha", two_tenants.a.user_email)
    for url in ("/t/alpha/", "/t/alpha/records/", "/t/alpha/preferences",
                f"/t/alpha/records/{two_tenants.a.record_ids[0]}",
                f"/t/alpha/records/{two_tenants.b.record_ids[-1]}"):  # a 404 in the tenant
        page = client.get(url)
        assert page.status_code in (200, 404), url
        match = SWITCH.search(page.get_data(as_text=True))
        assert match and match.group(1) == "/t/alpha/language", url


def test_platform_pages_switch_through_the_session(app):
    client = app.test_client()
    assert html_lang(client.get("/")) == "fr"
    token = csrf_token(client, "/privacy")
    response = client.post("/language", data={"lang": "en", "next": "/privacy",
                                              "csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"].endswith("/privacy")
    assert html_lang(client.get("/")) == "en"
    evil = client.post("/language", data={"lang": "fr", "next": "//evil.example/",
                                          "csrf_token": token})
    assert evil.headers["Location"] == "/"


def test_catalogue_translates_every_message():
    """Every msgid of the code and templates has a French translation (run ``make messages``
    and translate the new entries of qalitel/translations/fr/LC_MESSAGES/messages.po)."""
    with PO.open("rb") as handle:
        catalog = read_po(handle, locale="fr")
    translated = {m.id if isinstance(m.id, str) else m.id[0]
                  for m in catalog if m.id and m.string and "fuzzy" not in m.flags
                  and (all(m.string) if isinstance(m.string, tuple) else True)}
    method_map = [("core/**.py", "python"), ("qalitel/**.py", "python"),
                  ("tenants/**.py", "python"), ("maintenance/**.py", "python"),
                  ("templates/**.html", "jinja2"), ("templates/**.txt", "jinja2")]
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "lazy_gettext": None,
                "_l": None, "pgettext": ((1, "c"), 2), "npgettext": ((1, "c"), 2, 3),
                "lazy_ngettext": (1, 2)}
    missing = set()
    for filename, _lineno, message, _comments, _context in extract_from_dir(
            str(ROOT), method_map, options_map={}, keywords=keywords):
        msgid = message if isinstance(message, str) else message[0]
        if msgid and msgid not in translated:
            missing.add(f"{filename}: {msgid}")
    assert not missing, "untranslated messages:\n" + "\n".join(sorted(missing))


def test_compile_catalogs_builds_mo(tmp_path: Path):
    target = tmp_path / "translations"
    shutil.copytree(PO.parent.parent.parent, target,
                    ignore=shutil.ignore_patterns("*.mo"))
    written = compile_catalogs(target)
    mo = target / "fr" / "LC_MESSAGES" / "messages.mo"
    assert written == [mo]
    catalog = read_mo(io.BytesIO(mo.read_bytes()))
    assert catalog.get("Sign in").string == "Se connecter"
    assert compile_catalogs(target) == []  # up to date: nothing rewritten


def test_every_page_template_has_the_footer():
    """Every full page extends base.html (directly or through another page), so the language
    switch and the privacy link are on every page."""
    templates = ROOT / "templates"
    parents = {}
    for path in templates.rglob("*.html"):
        name = path.relative_to(templates).as_posix()
        match = re.search(r"""{%-?\s*extends\s+["']([^"']+)["']""", path.read_text("utf-8"))
        parents[name] = match.group(1) if match else None
    pages = [n for n in parents if not n.rsplit("/", 1)[-1].startswith("_") and n != "base.html"
             and not n.startswith("reports/pdf/")]  # PDF documents (WeasyPrint), not pages
    assert "privacy.html" in pages and "auth/login.html" in pages
    for name in pages:
        seen, current = set(), name
        while current is not None and current != "base.html" and current not in seen:
            seen.add(current)
            current = parents.get(current)
        assert current == "base.html", f"{name} does not extend base.html"
    base = (templates / "base.html").read_text("utf-8")
    assert "lang-switch" in base and "privacy" in base
