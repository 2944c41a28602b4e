"""Sign-in, sessions, sign-out and the remember cookie, on both backends."""

from __future__ import annotations

import re
from contextlib import contextmanager

import pytest

from tests.conftest import CSRF_RE, PASSWORD, csrf_token, in_tenant, login, provision

pytestmark = pytest.mark.usefixtures("english_clients")


@contextmanager
def _tenant(app, slug):
    """The tenant's session, committed when the block ends (services only flush)."""
    from qalitel.transaction import unit_of_work

    with in_tenant(app, slug) as session, unit_of_work():
        yield session


def set_cookies(response) -> dict[str, str]:
    """Set-Cookie headers of a response, by cookie name."""
    out = {}
    for header in response.headers.getlist("Set-Cookie"):
        out[header.split("=", 1)[0]] = header
    return out


def is_deletion(header: str) -> bool:
    return "Max-Age=0" in header or "Expires=Thu, 01 Jan 1970" in header


def without_tokens(html: str) -> str:
    return CSRF_RE.sub("", html)


def header_logout_token(client, url: str) -> str:
    page = client.get(url).get_data(as_text=True)
    form = re.search(r'<form method="post" action="/t/\w+/logout".*?</form>', page, re.S)
    assert form, "no sign-out form in the header"
    return CSRF_RE.search(form.group(0)).group(1)


# ---------------------------------------------------------------- sign-in


def test_login_lands_in_tenant_and_records_last_login(two_tenants):
    client = two_tenants.app.test_client()
    response = login(client, "alpha", two_tenants.a.user_email)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/t/alpha/")
    assert client.get("/t/alpha/").status_code == 200
    admin = two_tenants.app.test_client()
    login(admin, "alpha", two_tenants.a.admin_email)
    listing = admin.get("/t/alpha/users/").get_data(as_text=True)
    assert "never" not in listing.split(two_tenants.a.user_email, 1)[1].split("</tr>", 1)[0]


def test_failed_login_does_not_reveal_whether_email_exists(two_tenants):
    client = two_tenants.app.test_client()
    wrong_password = login(client, "alpha", two_tenants.a.user_email, "not the password")
    unknown = login(client, "alpha", "nobody@alpha.example", "not the password")
    assert wrong_password.status_code == unknown.status_code == 401
    first, second = (without_tokens(r.get_data(as_text=True)) for r in (wrong_password, unknown))
    assert "Unknown email or wrong password." in first
    assert first.replace(two_tenants.a.user_email, "X") == second.replace(
        "nobody@alpha.example", "X")
    assert PASSWORD not in first


def test_suspended_account_cannot_sign_in(two_tenants):
    from qalitel.users.models import User
    from qalitel.users.service import suspend
    from tenants.context import tdb

    with _tenant(two_tenants.app, "alpha"):
        suspend(tdb.get(User, two_tenants.a.user_ids["user"]))
    client = two_tenants.app.test_client()
    response = login(client, "alpha", two_tenants.a.user_email)
    assert response.status_code == 403
    assert "suspended" in response.get_data(as_text=True)
    assert client.get("/t/alpha/").status_code == 302
    # a wrong password for a suspended account says no more than for any account
    assert login(client, "alpha", two_tenants.a.user_email, "wrong!").status_code == 401


def test_oversize_login_fields_are_refused_quietly(two_tenants):
    client = two_tenants.app.test_client()
    huge_email = "a" * 5000 + "@alpha.example"
    refused = login(client, "alpha", huge_email)  # malformed: said so, no account looked up
    assert refused.status_code == 400
    assert "Enter a valid email address." in refused.get_data(as_text=True)
    response = login(client, "alpha", two_tenants.a.user_email, "x" * 200_000)
    assert response.status_code == 401
    assert "Unknown email or wrong password." in response.get_data(as_text=True)
    assert client.get("/t/alpha/").status_code == 302


def test_next_parameter_stays_inside_the_tenant(two_tenants):
    client = two_tenants.app.test_client()
    for target in ("//evil.example/", "https://evil.example/t/alpha/", "/t/bravo/records/",
                   "/t/alpha\\@evil.example"):
        token = csrf_token(client, "/t/alpha/login")
        response = client.post("/t/alpha/login", query_string={"next": target}, data={
            "email": two_tenants.a.user_email, "password": PASSWORD, "csrf_token": token})
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/t/alpha/"), target
    token = csrf_token(client, "/t/alpha/login")
    response = client.post("/t/alpha/login?next=/t/alpha/records/", data={
        "email": two_tenants.a.user_email, "password": PASSWORD, "csrf_token": token})
    assert response.headers["Location"] == "/t/alpha/records/"


# ---------------------------------------------------------------- sessions


def test_session_issued_at_a_is_not_a_login_at_b(two_tenants):
    client = two_tenants.app.test_client()
    assert login(client, "alpha", two_tenants.a.admin_email).status_code == 302
    assert client.get("/t/alpha/users/").status_code == 200
    # the same session cookie is sent to bravo, where the same user id exists
    assert two_tenants.b.user_ids["admin"] == two_tenants.a.user_ids["admin"]
    response = client.get("/t/bravo/users/")
    assert response.status_code == 302 and "/t/bravo/login" in response.headers["Location"]
    assert client.get("/t/bravo/").status_code == 302


def test_login_id_of_a_used_at_b_loads_nobody(two_tenants):
    """Server-side check: load_user refuses an id naming another tenant's uid."""
    from qalitel.auth.views import load_user

    app = two_tenants.app
    a_id = f"{two_tenants.a.uid}:{two_tenants.a.user_ids['admin']}"
    with _tenant(app, "alpha") as session:
        from qalitel.users.models import User

        token = session.get(User, two_tenants.a.user_ids["admin"]).session_token
        assert load_user(f"{a_id}:{token}") is not None
        assert load_user(f"{a_id}:wrong-token") is None
        assert load_user("garbage") is None
    with _tenant(app, "bravo"):
        assert load_user(f"{a_id}:{token}") is None


def test_session_cookie_flags(two_tenants):
    client = two_tenants.app.test_client()
    cookie = set_cookies(login(client, "alpha", two_tenants.a.user_email))["qalitel_session"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie


def test_cookies_are_secure_behind_https(make_app, backend, password_hash):
    app = make_app(backend, https=True)
    handle = provision(app, "alpha", password_hash)
    client = app.test_client()
    token = csrf_token(client, "https://localhost/t/alpha/login")
    response = client.post("https://localhost/t/alpha/login", data={
        "email": handle.user_email, "password": PASSWORD, "csrf_token": token, "remember": "y"},
        headers={"Referer": "https://localhost/t/alpha/login"})  # Flask-WTF's HTTPS check
    assert response.status_code == 302
    cookies = set_cookies(response)
    for name in ("qalitel_session", "qalitel_remember"):
        assert "Secure" in cookies[name] and "HttpOnly" in cookies[name], name
        assert "SameSite=Lax" in cookies[name], name


# ---------------------------------------------------------------- sign-out


def test_logout_ends_session_and_remember_but_keeps_preferences(two_tenants):
    client = two_tenants.app.test_client()
    response = login(client, "alpha", two_tenants.a.user_email, remember="y")
    assert {"qalitel_session", "qalitel_remember"} <= set(set_cookies(response))
    assert client.get_cookie("qalitel_remember", path="/t/alpha/") is not None
    assert client.get_cookie("qalitel_prefs", path="/t/alpha/") is not None  # the login pref
    token = header_logout_token(client, "/t/alpha/records/")
    response = client.post("/t/alpha/logout", data={"csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == "/t/alpha/login"
    cookies = set_cookies(response)
    assert is_deletion(cookies["qalitel_session"])
    assert is_deletion(cookies["qalitel_remember"]) and "Path=/t/alpha/" in cookies[
        "qalitel_remember"]
    assert "qalitel_prefs" not in cookies or not is_deletion(cookies["qalitel_prefs"])
    assert client.get_cookie("qalitel_session") is None
    assert client.get_cookie("qalitel_remember", path="/t/alpha/") is None
    assert client.get_cookie("qalitel_prefs", path="/t/alpha/") is not None
    assert client.get("/t/alpha/records/").status_code == 302


def test_session_cookie_copied_before_logout_is_worthless_after(two_tenants):
    client = two_tenants.app.test_client()
    login(client, "alpha", two_tenants.a.user_email, remember="y")
    assert client.get("/t/alpha/records/").status_code == 200
    stolen = client.get_cookie("qalitel_session").value
    stolen_remember = client.get_cookie("qalitel_remember", path="/t/alpha/").value
    token = header_logout_token(client, "/t/alpha/records/")
    assert client.post("/t/alpha/logout", data={"csrf_token": token}).status_code == 302
    replay = two_tenants.app.test_client()
    replay.set_cookie("qalitel_session", stolen)
    assert replay.get("/t/alpha/records/").status_code == 302
    replay = two_tenants.app.test_client()
    replay.set_cookie("qalitel_remember", stolen_remember, path="/t/alpha/")
    assert replay.get("/t/alpha/records/").status_code == 302


def test_logout_get_asks_for_confirmation(two_tenants):
    client = two_tenants.app.test_client()
    assert client.get("/t/alpha/logout").headers["Location"] == "/t/alpha/login"
    login(client, "alpha", two_tenants.a.user_email)
    page = client.get("/t/alpha/logout")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'action="/t/alpha/logout"' in html and 'name="csrf_token"' in html
    assert client.get("/t/alpha/records/").status_code == 200  # still signed in
    token = csrf_token(client, "/t/alpha/logout")
    assert client.post("/t/alpha/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/t/alpha/records/").status_code == 302


def test_logout_without_or_with_stale_csrf_token_shows_the_clear_page(two_tenants):
    client = two_tenants.app.test_client()
    login(client, "alpha", two_tenants.a.user_email)
    for data in ({}, {"csrf_token": "stale.token.value"}):
        response = client.post("/t/alpha/logout", data=data)
        assert response.status_code == 400
        assert "Form expired" in response.get_data(as_text=True)
    assert client.get("/t/alpha/records/").status_code == 200


def test_csrf_token_of_another_session_or_a_closed_session_is_refused(two_tenants):
    """Replay: a token is bound to the session that received it."""
    victim, attacker = two_tenants.app.test_client(), two_tenants.app.test_client()
    login(victim, "alpha", two_tenants.a.user_email)
    stolen = csrf_token(attacker, "/t/alpha/login")
    response = victim.post("/t/alpha/logout", data={"csrf_token": stolen})
    assert response.status_code == 400
    assert victim.get("/t/alpha/records/").status_code == 200
    # a token from before sign-out is dead after it
    old = header_logout_token(victim, "/t/alpha/records/")
    assert victim.post("/t/alpha/logout", data={"csrf_token": old}).status_code == 302
    response = victim.post("/t/alpha/login", data={
        "email": two_tenants.a.user_email, "password": PASSWORD, "csrf_token": old})
    assert response.status_code == 400
    assert victim.get("/t/alpha/records/").status_code == 302


# ---------------------------------------------------------------- remember me


def test_remember_cookie_is_off_by_default(two_tenants):
    client = two_tenants.app.test_client()
    page = client.get("/t/alpha/login").get_data(as_text=True)
    assert re.search(r'<input id="remember" name="remember" type="checkbox" value="y">', page)
    response = login(client, "alpha", two_tenants.a.user_email)
    assert "qalitel_remember" not in set_cookies(response)
    client.delete_cookie("qalitel_session")
    assert client.get("/t/alpha/records/").status_code == 302


def test_remember_cookie_scope_lifetime_and_reuse(make_app, backend, password_hash):
    app = make_app(backend, remember_days=90)
    a = provision(app, "alpha", password_hash)
    b = provision(app, "bravo", password_hash)
    client = app.test_client()
    cookie = set_cookies(login(client, "alpha", a.user_email, remember="y"))["qalitel_remember"]
    assert "Path=/t/alpha/" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert f"Max-Age={90 * 24 * 3600}" in cookie
    # a new browser session: no session cookie, the remember cookie signs in again
    client.delete_cookie("qalitel_session")
    assert client.get("/t/alpha/records/").status_code == 200
    # the cookie is not sent to bravo; sent there anyway, it is nobody
    client.delete_cookie("qalitel_session")
    value = client.get_cookie("qalitel_remember", path="/t/alpha/").value
    client.set_cookie("qalitel_remember", value, path="/t/bravo/")
    assert client.get("/t/bravo/records/").status_code == 302
    assert b.user_ids["user"] == a.user_ids["user"]


def test_password_change_and_suspension_end_sessions_and_remember_cookies(two_tenants):
    from qalitel.users.models import User
    from qalitel.users.service import reactivate, set_password, suspend
    from tenants.context import tdb

    app, uid = two_tenants.app, two_tenants.a.user_ids["user"]
    for change in ("password", "suspension"):
        session_only, remembered = app.test_client(), app.test_client()
        assert login(session_only, "alpha", two_tenants.a.user_email).status_code == 302
        login(remembered, "alpha", two_tenants.a.user_email, remember="y")
        remembered.delete_cookie("qalitel_session")
        assert remembered.get("/t/alpha/records/").status_code == 200
        with _tenant(app, "alpha"):
            user = tdb.get(User, uid)
            if change == "password":
                set_password(user, PASSWORD)  # same password, new hash and token
            else:
                suspend(user)
        assert session_only.get("/t/alpha/records/").status_code == 302, change
        remembered.delete_cookie("qalitel_session")
        response = remembered.get("/t/alpha/records/")
        assert response.status_code == 302, change
        assert is_deletion(set_cookies(response)["qalitel_remember"])  # a dead cookie goes
        assert remembered.get_cookie("qalitel_remember", path="/t/alpha/") is None
        with _tenant(app, "alpha"):
            reactivate(tdb.get(User, uid))


def test_header_shows_sign_out_form_and_escapes_the_name(two_tenants):
    from qalitel.users.models import User
    from qalitel.users.service import rename
    from tenants.context import tdb

    with _tenant(two_tenants.app, "alpha"):
        rename(tdb.get(User, two_tenants.a.user_ids["user"]), '<script>alert("x")</script>')
    client = two_tenants.app.test_client()
    login(client, "alpha", two_tenants.a.user_email)
    html = client.get("/t/alpha/records/").get_data(as_text=True)
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert header_logout_token(client, "/t/alpha/records/")
