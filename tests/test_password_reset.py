"""Password reset and invitations by emailed links, through a real SMTP server on loopback."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest

from tests.conftest import (
    CSRF_RE,
    PASSWORD,
    csrf_token,
    in_tenant,
    link_in,
    login,
    provision,
)

pytestmark = pytest.mark.usefixtures("english_clients")

NEW = "a brand new password"


@pytest.fixture
def mail_app(make_app, backend, smtp_server, password_hash):
    """Tenants alpha and bravo on an app that sends mail to ``smtp_server``."""
    app = make_app(backend, **smtp_server.settings())
    provision(app, "alpha", password_hash)
    provision(app, "bravo", password_hash)
    return app


def ask_reset(client, slug: str, email: str):
    token = csrf_token(client, f"/t/{slug}/password/forgot")
    return client.post(f"/t/{slug}/password/forgot", data={"email": email, "csrf_token": token})


def set_new_password(client, path: str, password: str = NEW):
    page = client.get(path)
    assert page.status_code == 200, page.status_code
    token = CSRF_RE.search(page.get_data(as_text=True)).group(1)
    return client.post(path, data={"csrf_token": token, "password": password,
                                   "confirm": password})


def test_reset_by_emailed_link(mail_app, smtp_server):
    client = mail_app.test_client()
    response = ask_reset(client, "alpha", "User@Alpha.example")
    assert response.status_code == 302 and response.headers["Location"] == "/t/alpha/login"
    [mail] = smtp_server.wait_for(1)
    assert mail.rcpt_tos == ["user@alpha.example"]
    assert mail.message["To"] == "user@alpha.example"
    assert mail.message["From"] == "qalitel@localhost"
    assert "Alpha" in mail.message["Subject"]
    link = link_in(mail)
    parts = urlsplit(link)
    assert parts.scheme == "http" and parts.netloc == "localhost"
    assert parts.path.startswith("/t/alpha/password/reset/")
    assert "60 minutes" in mail.body
    # following the link sets the password; it does not sign in
    response = set_new_password(client, parts.path)
    assert response.status_code == 302 and response.headers["Location"] == "/t/alpha/login"
    assert client.get("/t/alpha/records/").status_code == 302
    assert login(mail_app.test_client(), "alpha", "user@alpha.example").status_code == 401
    assert login(mail_app.test_client(), "alpha", "user@alpha.example", NEW).status_code == 302
    # single use
    again = client.get(parts.path)
    assert again.status_code == 400 and "Link not valid" in again.get_data(as_text=True)
    assert again.headers["Cache-Control"] == "no-store"


def test_unknown_email_gets_the_same_answer_and_no_mail(mail_app, smtp_server):
    mail_app.config["MAIL_BACKGROUND"] = False  # sent before the answer: nothing left to wait for
    client = mail_app.test_client()
    unknown = ask_reset(client, "alpha", "nobody@alpha.example")
    unknown_page = client.get(unknown.headers["Location"]).get_data(as_text=True)
    known = ask_reset(client, "alpha", "user@alpha.example")
    known_page = client.get(known.headers["Location"]).get_data(as_text=True)
    assert unknown.status_code == known.status_code == 302
    assert unknown.headers["Location"] == known.headers["Location"]
    assert CSRF_RE.sub("", unknown_page) == CSRF_RE.sub("", known_page)
    assert "If an account uses this address" in known_page
    # an address of bravo is unknown at alpha
    ask_reset(client, "alpha", "admin@bravo.example")
    assert [m.rcpt_tos for m in smtp_server.messages] == [["user@alpha.example"]]


def test_link_from_tenant_a_does_not_work_at_tenant_b(mail_app, smtp_server):
    client = mail_app.test_client()
    ask_reset(client, "alpha", "user@alpha.example")
    path = urlsplit(link_in(smtp_server.wait_for(1)[0])).path
    at_bravo = path.replace("/t/alpha/", "/t/bravo/")
    response = client.get(at_bravo)
    assert response.status_code == 400
    token = csrf_token(client, "/t/bravo/login")
    response = client.post(at_bravo, data={"csrf_token": token, "password": NEW,
                                           "confirm": NEW})
    assert response.status_code == 400
    assert login(mail_app.test_client(), "bravo", "user@bravo.example").status_code == 302
    assert client.get(path).status_code == 200  # still good where it was issued


def test_tampered_expired_and_superseded_links_are_refused(mail_app, smtp_server, monkeypatch):
    from qalitel.auth import service

    client = mail_app.test_client()
    ask_reset(client, "alpha", "user@alpha.example")
    ask_reset(client, "alpha", "user@alpha.example")
    first, second = (urlsplit(link_in(m)).path for m in smtp_server.wait_for(2))
    head, token = first.rsplit("/", 1)
    for bad in (token[:-2] + ("AA" if not token.endswith("AA") else "BB"), "x" * 2000, "e30"):
        assert client.get(f"{head}/{bad}").status_code == 400
    # expired: the clock moves past the configured lifetime (60 min)

    class Later:
        @staticmethod
        def time() -> float:
            return time.time() + 61 * 60

    monkeypatch.setattr(service, "time", Later)
    assert client.get(first).status_code == 400
    monkeypatch.undo()
    # using one link kills every other link of the account
    assert set_new_password(client, second).status_code == 302
    assert client.get(first).status_code == 400


def test_link_dies_when_the_password_changes_otherwise(mail_app, smtp_server):
    client = mail_app.test_client()
    ask_reset(client, "alpha", "user@alpha.example")
    path = urlsplit(link_in(smtp_server.wait_for(1)[0])).path
    assert login(client, "alpha", "user@alpha.example").status_code == 302
    token = csrf_token(client, "/t/alpha/profile")
    response = client.post("/t/alpha/profile/password", data={
        "csrf_token": token, "current": PASSWORD, "password": NEW, "confirm": NEW})
    assert response.status_code == 302
    assert mail_app.test_client().get(path).status_code == 400


def test_suspended_account_gets_no_link(mail_app, smtp_server):
    from qalitel.users.service import find_by_email, suspend

    with in_tenant(mail_app, "alpha") as session:
        suspend(find_by_email("user@alpha.example"))
        session.commit()
    mail_app.config["MAIL_BACKGROUND"] = False  # sent before the answer: nothing left to wait for
    client = mail_app.test_client()
    assert ask_reset(client, "alpha", "user@alpha.example").status_code == 302
    assert ask_reset(client, "alpha", "admin@alpha.example").status_code == 302
    assert [m.rcpt_tos for m in smtp_server.messages] == [["admin@alpha.example"]]


def test_reset_form_rejects_bad_passwords(mail_app, smtp_server):
    client = mail_app.test_client()
    ask_reset(client, "alpha", "user@alpha.example")
    path = urlsplit(link_in(smtp_server.wait_for(1)[0])).path
    for password, confirm in (("short", "short"), ("p" * 300, "p" * 300), (NEW, NEW + "!")):
        token = csrf_token(client, path)
        response = client.post(path, data={"csrf_token": token, "password": password,
                                           "confirm": confirm})
        assert response.status_code == 400
    assert client.post(path, data={"password": NEW, "confirm": NEW}).status_code == 400  # CSRF
    assert set_new_password(client, path).status_code == 302


def test_admin_invites_a_user_by_mail(mail_app, smtp_server):
    admin = mail_app.test_client()
    login(admin, "alpha", "admin@alpha.example")
    token = csrf_token(admin, "/t/alpha/users/new")
    response = admin.post("/t/alpha/users/new", data={
        "csrf_token": token, "email": "newbie@alpha.example", "name": "Newbie",
        "profile": "user", "password": ""})
    assert response.status_code == 302
    [mail] = smtp_server.wait_for(1)
    assert mail.rcpt_tos == ["newbie@alpha.example"]
    assert "7 days" in mail.body
    path = urlsplit(link_in(mail)).path
    newbie = mail_app.test_client()
    assert set_new_password(newbie, path, "the newbie's password").status_code == 302
    assert login(newbie, "alpha", "newbie@alpha.example",
                 "the newbie's password").status_code == 302
    # the admin can also send a reset link from the user's page
    user_page = response.headers["Location"]
    token = csrf_token(admin, user_page)
    assert admin.post(f"{user_page}/send-reset", data={"csrf_token": token}).status_code == 302
    assert smtp_server.wait_for(2)[1].rcpt_tos == ["newbie@alpha.example"]


def test_link_host_comes_from_the_configuration_not_the_host_header(
        make_app, backend, smtp_server, password_hash):
    app = make_app(backend, server_name="qalitel.test", external_url="https://qalitel.test",
                   https=True, **smtp_server.settings())
    provision(app, "alpha", password_hash)
    client = app.test_client()
    base = "https://evil.example"
    token = csrf_token(client, f"{base}/t/alpha/password/forgot")
    response = client.post(f"{base}/t/alpha/password/forgot", data={
        "email": "user@alpha.example", "csrf_token": token},
        headers={"Referer": f"{base}/t/alpha/password/forgot"})
    assert response.status_code == 302
    link = link_in(smtp_server.wait_for(1)[0])
    assert link.startswith("https://qalitel.test/t/alpha/password/reset/")
    # on the tenant's own host name, the link keeps it
    host = "https://alpha.qalitel.test"
    token = csrf_token(client, f"{host}/password/forgot")
    client.post(f"{host}/password/forgot", data={"email": "user@alpha.example",
                                                 "csrf_token": token},
                headers={"Referer": f"{host}/password/forgot"})
    link = link_in(smtp_server.wait_for(2)[1])
    assert link.startswith("https://alpha.qalitel.test/t/alpha/password/reset/")
    assert client.get(urlsplit(link).path, base_url=host).status_code == 200


def test_a_forged_host_never_reaches_the_mailed_link(make_app, backend, smtp_server,
                                                     password_hash):
    """No server name configured: the link still names QALITEL_EXTERNAL_URL, not the Host."""
    app = make_app(backend, external_url="https://qalitel.example.com", **smtp_server.settings())
    provision(app, "alpha", password_hash)
    client = app.test_client()
    base = "http://evil.example"
    token = csrf_token(client, f"{base}/t/alpha/password/forgot")
    response = client.post(f"{base}/t/alpha/password/forgot", data={
        "email": "user@alpha.example", "csrf_token": token},
        headers={"Referer": f"{base}/t/alpha/password/forgot"})
    assert response.status_code == 302
    link = link_in(smtp_server.wait_for(1)[0])
    assert link.startswith("https://qalitel.example.com/t/alpha/password/reset/")
    assert "evil" not in smtp_server.messages[0].message.as_string()


def test_trusted_hosts_refuse_another_host(make_app, backend, password_hash):
    app = make_app(backend, external_url="https://qalitel.example.com",
                   trusted_hosts=("qalitel.example.com",))
    provision(app, "alpha", password_hash)
    client = app.test_client()
    assert client.get("https://qalitel.example.com/t/alpha/login").status_code == 200
    assert client.get("https://evil.example/t/alpha/login").status_code == 400


def test_smtp_login_is_used_when_configured(make_app, backend, smtp_server_with_auth,
                                            password_hash):
    box = smtp_server_with_auth
    app = make_app(backend, **box.settings(smtp_user="mailer", smtp_password="mail-secret"))
    provision(app, "alpha", password_hash)
    ask_reset(app.test_client(), "alpha", "user@alpha.example")
    [mail] = box.wait_for(1)
    assert mail.rcpt_tos == ["user@alpha.example"] and box.logins == ["mailer"]


def test_mail_server_down_changes_nothing_for_the_asker(make_app, backend, password_hash):
    from core import mail
    from qalitel.users.service import find_by_email
    from tests.conftest import _free_port

    app = make_app(backend, smtp_port=_free_port(), extra={"MAIL_BACKGROUND": False})
    provision(app, "alpha", password_hash)
    client = app.test_client()
    known, unknown = (ask_reset(client, "alpha", e)
                      for e in ("user@alpha.example", "nobody@alpha.example"))
    assert known.status_code == unknown.status_code == 302
    with in_tenant(app, "alpha"), app.test_request_context(
            "/t/alpha/", headers={"Accept-Language": "en"}):
        from qalitel.auth.service import RESET, link_message, send_now

        user = find_by_email("user@alpha.example")
        reason = send_now(link_message(user)(RESET))
        assert reason is not None and reason.startswith("the mail server could not be reached")
        message = mail.build_message(app.extensions["qalitel_settings"], "x@y.example",
                                     "s", "b")
        assert mail.deliver(message) is False
