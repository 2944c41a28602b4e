"""Locale done right: the main pages crawled in French and in English as a client user and a
client admin fail on any English date format or wrong plural in French (and French formats in
English); the time zone preference (a valid zone moves the hour, an unknown one is ignored);
the CSV in both languages; every error page in the reader's language and the app's frame;
the favicon. Both backends."""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import UTC, datetime

import pytest
from itsdangerous import URLSafeTimedSerializer

from qalitel import prefs
from tests.conftest import csrf_token, login
from tests.html_forms import form_of
from tests.records_world import build_world

STEP_AT = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)  # 13:00 in Paris, 07:00 in New York

# English formats a French page must not show (visible text, tags and attributes removed).
ENGLISH = {
    "month": re.compile(r"\b(January|February|March|April|May|June|July|August|September|"
                        r"October|November|December|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept?|Oct|"
                        r"Nov|Dec)\b"),
    "day": re.compile(r"\b(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday|Mon|Tue|"
                      r"Wed|Thu|Fri|Sat|Sun)\b"),
    "M/D/YY": re.compile(r"(?<![\d/])\d{1,2}/\d{1,2}/\d{2,4}(?![\d/])"),
    "AM/PM": re.compile(r"\b(AM|PM|am|pm)\b"),
    "ISO date": re.compile(r"(?<![\d-])\d{4}-\d{2}-\d{2}(?![\d-])"),
    "UTC": re.compile(r"\bUTC\b"),
}
FRENCH_MONTH = re.compile(r"\b(janv|févr|mars|avr|mai|juin|juil|août|sept|oct|nov|déc)\b")
FRENCH_DATE = re.compile(r"\d{1,2} (janv\.|févr\.|mars|avr\.|mai|juin|juil\.|août|sept\.|"
                         r"oct\.|nov\.|déc\.) \d{4}")
ENGLISH_DATE = re.compile(r"\b(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{1,2}, \d{4}")
# "1 actions", "1 non-conformités", "1 jours"… (French: 0 and 1 are singular).
FRENCH_PLURAL_ONE = re.compile(r"(?<![\d,.])[01][\u00a0\u202f ](?!fois\b|mois\b|mars\b|sur\b)"
                               r"([a-zà-ÿ-]+s)\b")
ENGLISH_PLURAL_ONE = re.compile(r"(?<![\d,.])1 (non-conformities|actions|days|hours|files|"
                                r"minutes|characters|requests)\b")
ENGLISH_SINGULAR_MANY = re.compile(r"(?<![\d,.])([02-9]|\d{2,}) (non-conformity|action|day|"
                                   r"hour|file|minute|character|request)\b(?!-)")
# French typography: a non-breaking space before : ; ? ! (not in times, URLs, "::").
NO_SPACE_BEFORE = re.compile(r"[^\s\u00a0\u202f\d:/][:;?!](?=\s|$)|(?<=\w) [:;?!](?=\s|$)")


def visible(page: str) -> str:
    """What a reader sees: no script/style, no tags (their attributes go with them); the
    time zone select is left out (IANA names such as "UTC" or "Atlantic/Jan Mayen")."""
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S | re.I)
    page = re.sub(r'<select id="tz".*?</select>', " ", page, flags=re.S)
    page = re.sub(r"<[^>]+>", " ", page)
    return re.sub(r"[ \t\r\n]+", " ", html.unescape(page))


def _english_formats(text: str) -> list[str]:
    return [f"{name}: {m.group(0)!r}" for name, rx in ENGLISH.items() for m in rx.finditer(text)]


@pytest.fixture(scope="module")
def world(make_module_app, shared_backend, password_hash):
    from qalitel.records import service
    from qalitel.records.models import Action, NonConformity, StatusChange
    from tenants.context import tdb

    world = build_world(make_module_app(shared_backend), password_hash)
    with world.app.app_context(), world.context():
        u = {key: world.user(key) for key in world.users}
        record = tdb.get(NonConformity, world.records["action_user1"])
        step = service.change_status(u["manager1"], record, "analysis", "Checked")
        tdb.flush()
        tdb.get(StatusChange, step.id).changed_at = STEP_AT
        service.update_nonconformity(u["manager1"], record, detected_on=datetime(2026, 1, 5).date())
        action = tdb.get(Action, world.actions["overdue_user1"])
        service.update_action(u["user1"], action, status="done")
        service.check_effectiveness(u["manager1"], action, True, "Works")
    return world


def _client(world, profile: str, lang: str):
    client = world.app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = lang
    assert login(client, world.slug, world.emails[profile]).status_code == 302
    return client


def _pages(world, profile: str) -> list[str]:
    base = f"/t/{world.slug}"
    pages = [f"{base}/", f"{base}/records/?reset=1",
             f"{base}/records/{world.records['action_user1']}", f"{base}/actions/?reset=1",
             f"{base}/actions/{world.actions['overdue_user1']}",
             f"{base}/preferences", f"{base}/my-data", f"{base}/account/profile",
             f"{base}/records/999999"]
    if profile == "admin":
        pages += [f"{base}/folders/", f"{base}/users/", f"{base}/users/{world.users['user1']}",
                  f"{base}/admin/backups/", f"{base}/maintenance/", f"{base}/maintenance/log",
                  f"{base}/admin/export", f"{base}/erasure-requests/",
                  f"{base}/records/?q=hr+title", f"{base}/actions/?owner=me"]
    else:
        pages += [f"{base}/actions/?owner=me"]
    return pages


@pytest.mark.parametrize("profile", ["user1", "admin"])
def test_french_pages_show_french_dates_and_plurals(world, profile):
    client = _client(world, profile, "fr")
    seen = ""
    for url in _pages(world, profile):
        response = client.get(url)
        assert response.status_code in (200, 404), (url, response.status_code)
        text = visible(response.get_data(as_text=True))
        assert 'lang="fr"' in response.get_data(as_text=True), url
        assert not _english_formats(text), (url, _english_formats(text))
        wrong = [m.group(0) for m in FRENCH_PLURAL_ONE.finditer(text)]
        assert not wrong, (url, wrong)
        typo = [text[max(m.start() - 20, 0):m.end() + 5] for m in NO_SPACE_BEFORE.finditer(text)]
        assert not typo, (url, typo)
        seen += text
    assert FRENCH_DATE.search(seen)
    assert "1 action" in seen and "1 actions" not in seen
    if profile == "admin":
        assert re.search(r"(?<!\d)1 non-conformité(?!s)", seen)


@pytest.mark.parametrize("profile", ["user1", "admin"])
def test_english_pages_show_english_dates_and_plurals(world, profile):
    client = _client(world, profile, "en")
    seen = ""
    for url in _pages(world, profile):
        response = client.get(url)
        assert response.status_code in (200, 404), (url, response.status_code)
        text = visible(response.get_data(as_text=True))
        assert not FRENCH_MONTH.search(text), url
        for rx in (ENGLISH["ISO date"], ENGLISH["UTC"], ENGLISH_PLURAL_ONE, ENGLISH_SINGULAR_MANY):
            assert not rx.search(text), (url, rx.search(text).group(0))
        seen += text
    assert ENGLISH_DATE.search(seen)
    assert re.search(r"(?<!\d)1 action\b", seen)
    if profile == "admin":
        assert re.search(r"(?<!\d)1 non-conformity\b", seen)


def _record_page(client, world) -> str:
    return visible(client.get(f"/t/{world.slug}/records/{world.records['action_user1']}")
                   .get_data(as_text=True))


def _cookie(client, world) -> dict:
    cookie = client.get_cookie(prefs.COOKIE, path=f"/t/{world.slug}/")
    return URLSafeTimedSerializer(world.app.secret_key, salt=prefs.SALT).loads(cookie.value)


def test_time_zone_preference_round_trips_and_moves_the_hour(world):
    client = _client(world, "user1", "fr")
    assert "15 janv. 2026, 13:00" in _record_page(client, world)  # Europe/Paris by default
    url = f"/t/{world.slug}/preferences"
    page = client.get(url).get_data(as_text=True)
    form = form_of(page, lambda f: "tz" in f.names())
    assert form.data()["tz"] == [""]  # the default, followed when it changes
    assert 'value="America/New_York"' in page
    assert client.post(url, data=form.data()).status_code == 302
    saved = _cookie(client, world)  # the language and density are stored from the first save
    assert "tz" not in saved
    assert client.post(url, data=form.data()).status_code == 302
    assert _cookie(client, world) == saved  # saved untouched: nothing changes
    assert client.post(url, data=form.data(tz="America/New_York")).status_code == 302
    assert _cookie(client, world)["tz"] == "America/New_York"
    assert "15 janv. 2026, 07:00" in _record_page(client, world)
    again = form_of(client.get(url).get_data(as_text=True), lambda f: "tz" in f.names())
    assert again.data()["tz"] == ["America/New_York"]
    refused = client.post(url, data=form.data(tz="Mars/Olympus"))
    assert refused.status_code == 200  # the form says the choice is not valid
    assert _cookie(client, world)["tz"] == "America/New_York"


@pytest.mark.parametrize("zone", ["Mars/Olympus", "A" * 300, "../../etc/passwd", 42, ""])
def test_unknown_time_zone_in_the_cookie_is_ignored(world, zone):
    client = _client(world, "user1", "fr")
    data = {"tenant": world.slug, "uid": world.handle.uid, "tz": zone, "lang": "fr"}
    value = URLSafeTimedSerializer(world.app.secret_key, salt=prefs.SALT).dumps(data)
    client.set_cookie(prefs.COOKIE, value, path=f"/t/{world.slug}/")
    page = client.get(f"/t/{world.slug}/records/{world.records['action_user1']}")
    assert page.status_code == 200
    assert "15 janv. 2026, 13:00" in visible(page.get_data(as_text=True))


def _csv(response, delimiter: str) -> list[list[str]]:
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.data.startswith(b"\xef\xbb\xbf")  # UTF-8 with a BOM, for Excel
    return list(csv.reader(io.StringIO(response.data.decode("utf-8-sig")), delimiter=delimiter))


def test_csv_in_french_and_english(world):
    base = f"/t/{world.slug}"
    french = _client(world, "admin", "fr")
    rows = _csv(french.get(f"{base}/records/export.csv?reset=1"), ";")
    header = rows[0]
    assert header[:6] == ["Numéro", "Titre", "Statut", "Gravité", "Origine", "Date de détection"]
    by_title = {row[1]: row for row in rows[1:]}
    other = by_title["other title"]
    assert other[2] == "Ouverte" and other[3] == "Critique"
    assert by_title["action_user1 title"][2] == "Analyse"
    assert by_title["action_user1 title"][5] == "05/01/2026"
    codes = {"open", "analysis", "minor", "major", "critical", "internal", "supplier",
             "customer", "audit", "corrective", "planned", "done"}
    assert not codes & {cell for row in rows[1:] for cell in row}
    assert {row[9] for row in rows[1:]} <= {"Oui", "Non"}
    actions = _csv(french.get(f"{base}/actions/export.csv?reset=1"), ";")
    assert actions[0][2:5] == ["Type", "Statut", "Échéance"]
    assert not codes & {cell for row in actions[1:] for cell in row}

    english = _client(world, "admin", "en")
    rows = _csv(english.get(f"{base}/records/export.csv?reset=1"), ",")
    assert rows[0][:3] == ["Number", "Title", "Status"]
    by_title = {row[1]: row for row in rows[1:]}
    assert by_title["other title"][2:4] == ["Open", "Critical"]
    assert by_title["action_user1 title"][5] == "2026-01-05"
    assert not codes & {cell for row in rows[1:] for cell in row}


# -- error pages ------------------------------------------------------------------------

def _frame(page: str) -> str:
    """"tenant" (menu and sign-out), or "public"; a home link either way."""
    assert 'id="error-home"' in page
    tenant = 'class="inline signout"' in page and 'aria-label="' in page and "<nav" in page
    return "tenant" if tenant else "public"


def test_error_pages_in_the_readers_language_and_frame(world):
    base = f"/t/{world.slug}"
    user1 = _client(world, "user1", "fr")
    forbidden = user1.get(f"{base}/users/")
    assert forbidden.status_code == 403 and _frame(forbidden.get_data(as_text=True)) == "tenant"
    assert "Interdit" in forbidden.get_data(as_text=True) or "Accès" in forbidden.get_data(
        as_text=True)
    missing = user1.get(f"{base}/records/999999").get_data(as_text=True)
    assert _frame(missing) == "tenant" and 'lang="fr"' in missing
    status_url = f"{base}/records/{world.records['by_user1']}/status"
    refused = user1.get(status_url)
    assert refused.status_code == 405 and "POST" in refused.headers["Allow"]
    page = refused.get_data(as_text=True)
    assert "Method Not Allowed" not in page and "Action non permise" in page
    assert 'lang="fr"' in page and f'href="{base}/"' in page
    expired = user1.post(f"{base}/preferences", data={"lang": "en"})  # no CSRF token
    assert expired.status_code == 400
    assert _frame(expired.get_data(as_text=True)) == "tenant"
    assert "Formulaire expiré" in expired.get_data(as_text=True)
    too_large = user1.post(f"{base}/preferences", data={"x": "a" * (3 * 1024 * 1024)})
    assert too_large.status_code == 413 and 'id="error-home"' in too_large.get_data(as_text=True)

    english = world.app.test_client()  # signed out, English asked for, French chosen
    english.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    anonymous = english.get(f"{base}/nothing-here").get_data(as_text=True)
    assert 'lang="en"' in anonymous and "Not found" in anonymous
    assert _frame(anonymous) == "public" and f'href="{base}/"' in anonymous
    assert english.get("/no-such-page").status_code == 404


def test_unrouted_path_answers_in_the_language_of_the_tenant_cookie(world):
    base = f"/t/{world.slug}"
    client = _client(world, "user1", "fr")  # the browser asks for French...
    token = csrf_token(client, f"{base}/preferences")
    client.post(f"{base}/language", data={"lang": "en", "csrf_token": token})  # ...chose English
    for url in (f"{base}/no-such-page", f"{base}/records/abc/def"):
        response = client.get(url)
        page = response.get_data(as_text=True)
        assert response.status_code == 404 and 'lang="en"' in page and "Not found" in page, url
        assert _frame(page) == "public" and f'action="{base}/language"' in page
    refused = client.get(f"{base}/records/{world.records['by_user1']}/status")
    assert refused.status_code == 405 and 'lang="en"' in refused.get_data(as_text=True)
    assert "Action not allowed" in refused.get_data(as_text=True)
    # a cookie naming another tenant, or a tampered one, is not read
    other = world.app.test_client()
    other.set_cookie(prefs.COOKIE, client.get_cookie(prefs.COOKIE, path=f"{base}/").value,
                     path="/t/nosuch/")
    assert 'lang="fr"' in other.get("/t/nosuch/no-such-page").get_data(as_text=True)
    tampered = world.app.test_client()
    tampered.set_cookie(prefs.COOKIE, "x" + client.get_cookie(prefs.COOKIE, path=f"{base}/")
                        .value, path=f"{base}/")
    assert 'lang="fr"' in tampered.get(f"{base}/no-such-page").get_data(as_text=True)


def test_suspended_closed_and_throttled_pages(make_app, backend, password_hash):
    from core.db import db
    from tenants.registry import Tenant, TenantStatus
    from tests.conftest import provision

    app = make_app(backend, extra={"LOGIN_LIMIT_PER_ACCOUNT_ADDRESS": "2 per minute"})
    handle = provision(app, "gamma", password_hash, records=0)
    client = app.test_client()
    for _attempt in range(3):
        last = login(client, "gamma", handle.user_email, "wrong password!")
    page = last.get_data(as_text=True)
    assert last.status_code == 429 and "Trop de tentatives" in page
    assert "Retry-After" in last.headers
    assert _frame(page) == "public"
    for status, code, french in ((TenantStatus.SUSPENDED, 423, "Espace suspendu"),
                                 (TenantStatus.CLOSED, 410, "Espace fermé")):
        with app.app_context():
            db.session.query(Tenant).filter_by(slug="gamma").update({"status": status})
            db.session.commit()
        answer = client.get("/t/gamma/login")
        assert answer.status_code == code and french in answer.get_data(as_text=True)
        assert _frame(answer.get_data(as_text=True)) == "public"


def test_500_page_renders_when_the_tenant_database_is_down(make_app, backend, password_hash):
    from core.db import db
    from tenants.registry import Tenant
    from tests.conftest import provision

    app = make_app(backend, extra={"PROPAGATE_EXCEPTIONS": False})
    handle = provision(app, "delta", password_hash, records=1)
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "fr"
    assert login(client, "delta", handle.user_email).status_code == 302
    with app.app_context():
        row = db.session.query(Tenant).filter_by(slug="delta").one()
        real_name, row.database_name = row.database_name, row.database_name + "_gone"
        db.session.commit()
    app.extensions["qalitel_engines"].clear()
    try:
        answer = client.get("/t/delta/records/")
    finally:
        with app.app_context():
            db.session.query(Tenant).filter_by(slug="delta").update(
                {"database_name": real_name})
            db.session.commit()
        app.extensions["qalitel_engines"].clear()
    page = answer.get_data(as_text=True)
    assert answer.status_code == 500 and 'lang="fr"' in page
    assert "Erreur du serveur" in page and _frame(page) == "public"
    assert 'href="/t/delta/"' in page


def test_conflict_page_is_framed_and_translated(world):
    from flask_babel import force_locale

    from qalitel.errors import render_error

    with world.app.test_request_context("/"), force_locale("fr"):
        response = render_error(409, database=False, not_saved=True)
    page = response.get_data(as_text=True)
    assert response.status_code == 409 and "Non enregistré" in page and _frame(page) == "public"


def test_favicon_is_served_locally(world):
    client = world.app.test_client()
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.mimetype == "image/svg+xml"
    assert b"<svg" in icon.data
    page = client.get(f"/t/{world.slug}/login").get_data(as_text=True)
    match = re.search(r'<link rel="icon" href="([^"]+)"', page)
    assert match and match.group(1).startswith("/static/")
    assert client.get(match.group(1)).status_code == 200
