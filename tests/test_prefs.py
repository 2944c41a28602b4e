"""The one-year preference cookie ``qalitel_prefs``: attributes, scope, contents, key
rotation, everything a hostile or stale cookie may be, size cap, forget-me, preferences page,
and the sign-in integration (pre-filled login name, landing page). Both backends."""

from __future__ import annotations

import random
import re
import secrets
import string
import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from qalitel import prefs
from tests.conftest import PASSWORD, csrf_token, login, provision

YEAR = "31536000"


# -- helpers -----------------------------------------------------------------------------

def sign(data: Any, key: str | list[str], signer: type = TimestampSigner) -> str:
    return URLSafeTimedSerializer(key, salt=prefs.SALT, signer=signer).dumps(data)


def read(app: Flask, value: str) -> dict[str, Any]:
    keys = [*app.config["SECRET_KEY_FALLBACKS"], app.secret_key]
    return URLSafeTimedSerializer(keys, salt=prefs.SALT).loads(value)


def set_cookies(response) -> list[str]:
    return [h for h in response.headers.getlist("Set-Cookie")
            if h.startswith(prefs.COOKIE + "=")]


def parse_cookie(header: str) -> tuple[str, dict[str, str]]:
    first, *attrs = header.split("; ")
    value = first.split("=", 1)[1]
    parsed = {}
    for attr in attrs:
        name, _, val = attr.partition("=")
        parsed[name.lower()] = val
    return value, parsed


def prefs_cookie(response) -> tuple[str, dict[str, str]]:
    headers = set_cookies(response)
    assert len(headers) == 1, response.headers.getlist("Set-Cookie")
    return parse_cookie(headers[0])


def present(client: FlaskClient, value: str, slug: str = "alpha", **kw: Any) -> None:
    client.set_cookie(prefs.COOKIE, value, path=f"/t/{slug}/", **kw)


def prefilled(response) -> str | None:
    match = re.search(r'<input[^>]*id="email"[^>]*>', response.get_data(as_text=True))
    assert match, "no email field"
    value = re.search(r'value="([^"]*)"', match.group(0))
    return (value.group(1) or None) if value else None


def tenant_session_token(app: Flask, slug: str, email: str) -> tuple[str, str]:
    """(session token, password hash) of a user, read from its tenant database."""
    from core.db import db
    from qalitel.users.models import User
    from tenants.context import tenant_context
    from tenants.engines import TenantInfo
    from tenants.registry import Tenant

    with app.app_context():
        row = db.session.query(Tenant).filter_by(slug=slug).one()
        with tenant_context(TenantInfo.from_row(row)) as ctx:
            user = ctx.session.query(User).filter_by(email=email).one()
            return user.session_token, user.password_hash


def logout(client: FlaskClient, slug: str = "alpha", base_url: str | None = None):
    """Sign out the way the page does it: POST with the CSRF token."""
    kw = {"base_url": base_url} if base_url else {}
    page = client.get(f"/t/{slug}/preferences" if not base_url else "/preferences", **kw)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"',
                      page.get_data(as_text=True)).group(1)
    return client.post(f"/t/{slug}/logout" if not base_url else "/logout",
                       data={"csrf_token": token}, **kw)


def good(two_tenants, **extra: Any) -> dict[str, Any]:
    return {"tenant": "alpha", "uid": two_tenants.a.uid, "login": two_tenants.a.user_email,
            **extra}


# -- the cookie a sign-in writes --------------------------------------------------------

def test_login_writes_signed_tenant_scoped_cookie(two_tenants):
    app, client = two_tenants.app, two_tenants.app.test_client()
    response = login(client, "alpha", two_tenants.a.user_email)
    assert response.status_code == 302
    value, attrs = prefs_cookie(response)
    assert attrs["max-age"] == YEAR
    assert attrs["path"] == "/t/alpha/"
    assert attrs["samesite"] == "Lax"
    assert "httponly" in attrs
    assert "secure" not in attrs  # plain HTTP here
    assert "domain" not in attrs  # host-only
    data = read(app, value)
    assert data == {"tenant": "alpha", "uid": two_tenants.a.uid,
                    "login": two_tenants.a.user_email}
    token, password_hash = tenant_session_token(app, "alpha", two_tenants.a.user_email)
    decoded = str(data)
    for secret in (PASSWORD, password_hash, token):
        assert secret not in decoded and secret not in value
    session = [h for h in response.headers.getlist("Set-Cookie")
               if h.startswith("qalitel_session=")]
    assert session and session[0].split(";")[0].split("=", 1)[1] not in decoded


def test_cookie_is_secure_behind_https(make_app, backend, password_hash):
    app = make_app(backend, https=True)
    provision(app, "alpha", password_hash)
    client = app.test_client()
    client.environ_base["HTTP_REFERER"] = "https://localhost/t/alpha/login"
    token = csrf_token(client, "https://localhost/t/alpha/login")
    response = client.post("https://localhost/t/alpha/login",
                           data={"email": "user@alpha.example", "password": PASSWORD,
                                 "csrf_token": token})
    assert response.status_code == 302
    _value, attrs = prefs_cookie(response)
    assert "secure" in attrs and "httponly" in attrs and attrs["max-age"] == YEAR


def test_subdomain_mode_is_host_only_root_path(make_app, backend, password_hash):
    app = make_app(backend, server_name="qalitel.test")
    provision(app, "alpha", password_hash)
    provision(app, "bravo", password_hash)
    client = app.test_client()
    base = "http://alpha.qalitel.test"
    page = client.get("/login", base_url=base)
    assert page.status_code == 200
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"',
                      page.get_data(as_text=True)).group(1)
    response = client.post("/login", base_url=base, data={
        "email": "user@alpha.example", "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302
    _value, attrs = prefs_cookie(response)
    assert attrs["path"] == "/" and "domain" not in attrs
    assert logout(client, base_url=base).status_code == 302
    assert prefilled(client.get("/login", base_url=base)) == "user@alpha.example"
    # host-only: bravo's host does not get it (and would ignore it anyway)
    assert prefilled(client.get("/login", base_url="http://bravo.qalitel.test")) is None
    # the footer's language switch works on the tenant's host, with the same scope
    page = client.get("/login", base_url=base)
    action = re.search(r'action="([^"]+)" class="inline lang-switch"',
                       page.get_data(as_text=True)).group(1)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"',
                      page.get_data(as_text=True)).group(1)
    switched = client.post(action, base_url=base, data={"lang": "en", "csrf_token": token})
    assert switched.status_code == 302
    _value, attrs = prefs_cookie(switched)
    assert attrs["path"] == "/" and "domain" not in attrs
    assert '<html lang="en"' in client.get("/login", base_url=base).get_data(as_text=True)


# -- sign-in integration ----------------------------------------------------------------

def test_logout_keeps_cookie_and_login_is_prefilled(two_tenants):
    client = two_tenants.app.test_client()
    assert prefilled(client.get("/t/alpha/login")) is None
    login(client, "alpha", two_tenants.a.user_email)
    out = logout(client)
    assert out.status_code == 302
    assert set_cookies(out) == []  # logging out does not touch the preference cookie
    assert client.get_cookie(prefs.COOKIE, path="/t/alpha/") is not None
    assert client.get("/t/alpha/").status_code == 302  # signed out indeed
    assert prefilled(client.get("/t/alpha/login")) == two_tenants.a.user_email
    # the cookie is scoped to alpha's path: bravo's login form is not pre-filled
    assert prefilled(client.get("/t/bravo/login")) is None


def test_login_lands_on_last_page(two_tenants):
    client = two_tenants.app.test_client()
    present(client, sign(good(two_tenants, last="/t/alpha/records/"), two_tenants.app.secret_key))
    response = login(client, "alpha", two_tenants.a.user_email)
    assert response.headers["Location"].endswith("/t/alpha/records/")


def test_next_sign_in_reopens_the_last_list_with_its_settings(two_tenants):
    """End to end with the record lists: the last page and the list's filters come back."""
    client = two_tenants.app.test_client()
    login(client, "alpha", two_tenants.a.user_email)
    page = client.get("/t/alpha/records/?sort=-number&per_page=50")
    assert page.status_code == 200
    logout(client)
    response = login(client, "alpha", two_tenants.a.user_email)
    assert response.headers["Location"].endswith("/t/alpha/records/?sort=-number&per_page=50")
    data = read(two_tenants.app, client.get_cookie(prefs.COOKIE, path="/t/alpha/").value)
    assert data["lists"]["records"]["sort"] == "-number"
    assert data["lists"]["records"]["page_size"] == 50


def test_login_start_page_wins_over_last_and_next_wins_over_both(two_tenants):
    app = two_tenants.app
    cookie = sign(good(two_tenants, start="/t/alpha/records/", last="/t/alpha/"),
                  app.secret_key)
    client = app.test_client()
    present(client, cookie)
    assert login(client, "alpha", two_tenants.a.user_email).headers["Location"].endswith(
        "/t/alpha/records/")
    client = app.test_client()
    present(client, cookie)
    record = two_tenants.a.record_ids[0]
    token = csrf_token(client, "/t/alpha/login")
    response = client.post(f"/t/alpha/login?next=/t/alpha/records/{record}", data={
        "email": two_tenants.a.user_email, "password": PASSWORD, "csrf_token": token})
    assert response.headers["Location"].endswith(f"/t/alpha/records/{record}")


@pytest.mark.parametrize("last", [
    "/t/alpha/logout", "/t/alpha/login", "/t/bravo/records/", "https://evil.example/",
    "//evil.example/t/alpha/", "/t/alpha/no-such-page", "/t/alpha/../bravo/records/"])
def test_unsafe_landing_page_falls_back_to_dashboard(two_tenants, last):
    client = two_tenants.app.test_client()
    present(client, sign(good(two_tenants, last=last), two_tenants.app.secret_key))
    response = login(client, "alpha", two_tenants.a.user_email)
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/t/alpha/")
    assert client.get("/t/alpha/").status_code == 200  # still signed in: not logged out


# -- key rotation -----------------------------------------------------------------------

def test_key_rotation_through_fallbacks(make_app, backend, password_hash):
    app = make_app(backend, secret_key="new-key-" + "n" * 24,
                   secret_key_fallbacks=("old-key-" + "o" * 24,))
    handle = provision(app, "alpha", password_hash)
    data = {"tenant": "alpha", "uid": handle.uid, "login": handle.user_email}
    old = app.test_client()
    present(old, sign(data, "old-key-" + "o" * 24))
    page = old.get("/t/alpha/login")
    assert prefilled(page) == handle.user_email
    # read with an old key, it is re-signed with the current key straight away
    value, attrs = prefs_cookie(page)
    assert attrs["max-age"] == YEAR
    assert URLSafeTimedSerializer("new-key-" + "n" * 24, salt=prefs.SALT).loads(value) == data
    unknown = app.test_client()
    present(unknown, sign(data, "some-other-key-" + "x" * 24))
    page = unknown.get("/t/alpha/login")
    assert page.status_code == 200 and prefilled(page) is None
    assert set_cookies(page) == []  # an unreadable cookie is left alone, not rewritten
    assert login(old, "alpha", handle.user_email).status_code == 302
    assert set_cookies(old.get("/t/alpha/login")) == []  # current key: no rewrite


class _TwoDaysOldSigner(TimestampSigner):
    def get_timestamp(self) -> int:
        return int(time.time()) - 2 * 24 * 3600


def test_the_year_rolls_on_once_a_day_not_on_every_response(two_tenants):
    """An unchanged cookie is not sent again while its signature is fresh; signed more than
    a day ago, it is re-signed now (same contents, Max-Age a year from today)."""
    app, data = two_tenants.app, good(two_tenants)
    fresh = app.test_client()
    present(fresh, sign(data, app.secret_key))
    assert set_cookies(fresh.get("/t/alpha/login")) == []
    aged = app.test_client()
    present(aged, sign(data, app.secret_key, signer=_TwoDaysOldSigner))
    page = aged.get("/t/alpha/login")
    assert prefilled(page) == two_tenants.a.user_email
    value, attrs = prefs_cookie(page)
    assert attrs["max-age"] == YEAR
    contents, signed_at = URLSafeTimedSerializer(app.secret_key, salt=prefs.SALT).loads(
        value, return_timestamp=True)
    assert contents == data and time.time() - signed_at.timestamp() < 60
    present(aged, value)
    assert set_cookies(aged.get("/t/alpha/login")) == []  # re-signed today: not again


# -- hostile or stale cookies are ignored, never an error page ----------------------------

class _YearOldSigner(TimestampSigner):
    def get_timestamp(self) -> int:
        return int(time.time()) - prefs.MAX_AGE - 60


def _flip(value: str, index: int) -> str:
    char = value[index]
    return value[:index] + ("A" if char != "A" else "B") + value[index + 1:]


def _ignored_cookies(two_tenants) -> dict[str, str]:
    key = two_tenants.app.secret_key
    valid = sign(good(two_tenants), key)
    return {
        "flipped payload byte": _flip(valid, 5),
        "flipped signature byte": _flip(valid, len(valid) - 3),
        "truncated": valid[:-4],
        "other key": sign(good(two_tenants), "not-our-key-" + "z" * 20),
        "expired": sign(good(two_tenants), key, signer=_YearOldSigner),
        "other tenant": sign({"tenant": "bravo", "uid": two_tenants.b.uid,
                              "login": two_tenants.b.user_email}, key),
        "alpha slug with bravo uid": sign({"tenant": "alpha", "uid": two_tenants.b.uid,
                                           "login": two_tenants.b.user_email}, key),
        "oversize": sign(good(two_tenants, junk=secrets.token_urlsafe(4000)), key),
        "not json": "bm90IGpzb24." + valid.rsplit(".", 1)[1],
        "a list": sign([1, 2, 3], key),
        "garbage": "%%%%\x7f....",
    }


@pytest.mark.filterwarnings("ignore:The 'qalitel_prefs' cookie is too large")
def test_hostile_cookies_are_ignored(two_tenants):
    cases = _ignored_cookies(two_tenants)
    assert len(cases["oversize"]) > 4096
    for name, value in cases.items():
        client = two_tenants.app.test_client()
        present(client, value)
        page = client.get("/t/alpha/login")
        assert page.status_code == 200, name
        assert prefilled(page) is None, name
        response = login(client, "alpha", two_tenants.a.user_email)
        assert response.status_code == 302, name
        assert response.headers["Location"].endswith("/t/alpha/"), name


def test_alpha_cookie_presented_at_bravo_is_ignored(two_tenants):
    """In path mode a browser would not send it; the server refuses it anyway."""
    client = two_tenants.app.test_client()
    cookie = sign(good(two_tenants, lang="en", last="/t/alpha/records/"),
                  two_tenants.app.secret_key)
    present(client, cookie, slug="bravo")
    page = client.get("/t/bravo/login")
    assert page.status_code == 200 and prefilled(page) is None
    assert 'lang="fr"' in page.get_data(as_text=True)
    response = login(client, "bravo", two_tenants.b.user_email)
    assert response.headers["Location"].endswith("/t/bravo/")
    _value, _attrs = prefs_cookie(response)
    assert read(two_tenants.app, _value)["tenant"] == "bravo"


def test_unknown_keys_wrong_types_and_password_are_dropped(two_tenants):
    app = two_tenants.app
    cookie = sign(good(two_tenants, password=PASSWORD, password_hash="scrypt:xyz",
                       session_token="abc", foo="bar", lang="en", density=7, start=42,
                       last=["/t/alpha/records/"],
                       lists={"records": {"filters": {"status": "open", "bad": 3},
                                          "page_size": True, "sort": ["x"]},
                              "actions": "not a dict"}), app.secret_key)
    client = app.test_client()
    present(client, cookie)
    page = client.get("/t/alpha/login")
    assert page.status_code == 200
    assert prefilled(page) == two_tenants.a.user_email
    assert 'lang="en"' in page.get_data(as_text=True)  # the valid part is kept
    response = login(client, "alpha", two_tenants.a.user_email)
    assert response.headers["Location"].endswith("/t/alpha/")
    # change a preference to get the cookie rewritten: only the clean part comes back
    token = csrf_token(client, "/t/alpha/preferences")
    saved = client.post("/t/alpha/language", data={"lang": "fr", "csrf_token": token})
    data = read(app, prefs_cookie(saved)[0])
    assert data == {"tenant": "alpha", "uid": two_tenants.a.uid,
                    "login": two_tenants.a.user_email, "lang": "fr",
                    "lists": {"records": {"filters": {"status": "open"}}}}


def test_sanitize_directly():
    assert prefs.sanitize({"tenant": "alpha", "password": "x"}, "alpha") == {"tenant": "alpha"}
    assert prefs.sanitize({"tenant": "bravo"}, "alpha") == {}
    assert prefs.sanitize("alpha", "alpha") == {}
    assert prefs.sanitize({"tenant": "alpha", "uid": "u1"}, "alpha", "u2") == {}
    assert prefs.sanitize({"tenant": "alpha", "login": "not an email"}, "alpha") == {
        "tenant": "alpha"}
    lists = {f"l{i}": {"page_size": 25} for i in range(20)}
    kept = prefs.sanitize({"tenant": "alpha", "lists": lists}, "alpha")["lists"]
    assert list(kept) == [f"l{i}" for i in range(12, 20)]  # the most recent ones


# -- size cap ---------------------------------------------------------------------------

def _random_text(rng: random.Random, size: int) -> str:
    alphabet = string.ascii_letters + string.digits + "éàçœ€ -_/✓😀\"'<>&%"
    return "".join(rng.choice(alphabet) for _ in range(size))


def test_cookie_stays_under_4kb_whatever_the_user_does(two_tenants):
    from tenants.context import tenant_context
    from tenants.engines import TenantInfo
    from tenants.registry import Tenant

    app = two_tenants.app
    rng = random.Random(20240611)
    sizes = []
    with app.app_context():
        from core.db import db

        info = TenantInfo.from_row(db.session.query(Tenant).filter_by(slug="alpha").one())
    for round_ in range(25):
        with app.test_request_context("/t/alpha/records/"), tenant_context(info):
            for i in range(rng.randint(1, 30)):
                filters = {_random_text(rng, rng.randint(1, 60)): _random_text(rng, 200)
                           for _ in range(rng.randint(0, 15))}
                filters["multi"] = [_random_text(rng, 130) for _ in range(12)]
                prefs.save_list_prefs(f"list-{round_}-{i}-" + "n" * 25, filters,
                                      _random_text(rng, 50), rng.choice([10, 25, 500, 9999]))
            prefs.set_pref("login", "u" * 240 + "@alpha.example")
            prefs.set_pref("last", "/t/alpha/records/?q=" + "x" * 280)
            prefs.set_pref("start", "/t/alpha/records/")
            prefs.set_pref("lang", "en")
            last_list = f"list-{round_}-{i}-" + "n" * 25
            response = app.response_class("ok")
            prefs._write(response)
            value, attrs = prefs_cookie(response)
            header = [h for h in response.headers.getlist("Set-Cookie")
                      if h.startswith(prefs.COOKIE)][0]
            sizes.append(len(header))
            assert len(value) < 4096 and len(header) < 4096
            assert attrs["max-age"] == YEAR
            data = read(app, value)
            # the most precious parts survive the squeeze
            assert data["login"].startswith("u") and data["lang"] == "en"
            assert data["start"] == "/t/alpha/records/"
            assert list(data.get("lists", {}))[-1:] in ([last_list], [])
    assert max(sizes) < 4096
    # and the squeezed cookie still reads back in a real request
    client = app.test_client()
    present(client, value)
    assert prefilled(client.get("/t/alpha/login")) == "u" * 240 + "@alpha.example"


def test_list_prefs_round_trip(two_tenants):
    from tenants.context import tenant_context
    from tenants.engines import TenantInfo
    from tenants.registry import Tenant

    app = two_tenants.app
    with app.app_context():
        from core.db import db

        info = TenantInfo.from_row(db.session.query(Tenant).filter_by(slug="alpha").one())
    with app.test_request_context("/t/alpha/records/"), tenant_context(info):
        assert prefs.list_prefs("records") == {"filters": {}, "sort": None, "page_size": None}
        prefs.save_list_prefs("records", {"status": "open", "q": "", "site": ["a", "b"]},
                              "-number", 50)
        assert prefs.list_prefs("records") == {"filters": {"status": "open", "site": ["a", "b"]},
                                               "sort": "-number", "page_size": 50}
        response = app.response_class("ok")
        prefs._write(response)
        value = prefs_cookie(response)[0]
    with app.test_request_context("/t/alpha/records/",
                                  headers={"Cookie": f"{prefs.COOKIE}={value}"}), \
            tenant_context(info):
        assert prefs.list_prefs("records")["filters"] == {"status": "open", "site": ["a", "b"]}
        prefs.save_list_prefs("records", {"status": "open", "site": ["a", "b"]}, "-number", 50)
        response = app.response_class("ok")
        prefs._write(response)
        assert set_cookies(response) == []  # unchanged: no rewrite


# -- forget me, preferences page --------------------------------------------------------

def test_forget_me_deletes_the_cookie(two_tenants):
    client = two_tenants.app.test_client()
    login(client, "alpha", two_tenants.a.user_email)
    logout(client)
    page = client.get("/t/alpha/login")
    body = page.get_data(as_text=True)
    assert 'action="/t/alpha/preferences/forget"' in body
    assert client.post("/t/alpha/preferences/forget").status_code == 400  # no CSRF token
    assert client.get_cookie(prefs.COOKIE, path="/t/alpha/") is not None
    token = csrf_token(client, "/t/alpha/login")
    response = client.post("/t/alpha/preferences/forget",
                           data={"csrf_token": token, "next": "/t/alpha/login"})
    assert response.status_code == 302
    value, attrs = prefs_cookie(response)
    assert value == "" and attrs["path"] == "/t/alpha/"
    assert attrs.get("max-age") == "0" or "1970" in attrs.get("expires", "")
    assert client.get_cookie(prefs.COOKIE, path="/t/alpha/") is None
    page = client.get("/t/alpha/login")
    assert prefilled(page) is None
    assert 'action="/t/alpha/preferences/forget"' not in page.get_data(as_text=True)


def test_preferences_page(two_tenants):
    client = two_tenants.app.test_client()
    assert client.get("/t/alpha/preferences").status_code == 302  # signed out
    login(client, "alpha", two_tenants.a.user_email)
    page = client.get("/t/alpha/preferences")
    body = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'class="density-comfortable"' in body
    assert 'action="/t/alpha/preferences/forget"' in body
    token = csrf_token(client, "/t/alpha/preferences")
    response = client.post("/t/alpha/preferences", data={
        "csrf_token": token, "lang": "en", "start": "records", "density": "compact"})
    assert response.status_code == 302
    data = read(two_tenants.app, prefs_cookie(response)[0])
    assert data["lang"] == "en" and data["density"] == "compact"
    assert data["start"] == "/t/alpha/records/"
    body = client.get("/t/alpha/").get_data(as_text=True)
    assert 'class="density-compact"' in body and 'lang="en"' in body
    logout(client)
    assert login(client, "alpha", two_tenants.a.user_email).headers["Location"].endswith(
        "/t/alpha/records/")
    # back to "the last page I visited"; an unknown choice is refused
    token = csrf_token(client, "/t/alpha/preferences")
    bad = client.post("/t/alpha/preferences", data={
        "csrf_token": token, "lang": "de", "start": "https://evil.example/", "density": "x"})
    assert bad.status_code == 200 and set_cookies(bad) == []
    actions = client.post("/t/alpha/preferences", data={
        "csrf_token": token, "lang": "fr", "start": "actions", "density": "comfortable"})
    assert read(two_tenants.app, prefs_cookie(actions)[0])["start"] == "/t/alpha/actions/"
    assert client.get("/t/alpha/actions/").status_code == 200
    ok = client.post("/t/alpha/preferences", data={
        "csrf_token": token, "lang": "fr", "start": "last", "density": "comfortable"})
    assert "start" not in read(two_tenants.app, prefs_cookie(ok)[0])
