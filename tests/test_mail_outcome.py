"""Mail an administrator sends (invitations, reset links) leaves after the commit, in the
recipient's language, and the administrator reads whether it left — or why not. Real SMTP
servers on loopback: one that takes mail, one that refuses the recipient, and a port where
nothing listens."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from tests.conftest import _free_port, csrf_token, in_tenant, link_in, login, provision

pytestmark = pytest.mark.usefixtures("english_clients")




def _admin(app):
    client = app.test_client()
    assert login(client, "alpha", "admin@alpha.example").status_code == 302
    return client


def create_user(client, email: str = "newbie@alpha.example"):
    url = "/t/alpha/users/new"
    response = client.post(url, data={"csrf_token": csrf_token(client, url), "email": email,
                                      "name": "Newbie", "profile": "user", "password": ""})
    assert response.status_code == 302, response.get_data(as_text=True)[:1000]
    return client.get(response.headers["Location"]).get_data(as_text=True)


def flashes(page: str) -> list[str]:
    return [re.sub(r"\s+", " ", m).strip()
            for m in re.findall(r'class="flash[^"]*"[^>]*>(.*?)</', page, re.S)]


def user_exists(app, email: str) -> bool:
    from qalitel.users.service import find_by_email

    with in_tenant(app, "alpha"):
        return find_by_email(email) is not None


def test_invitation_leaves_after_the_commit_and_is_reported(make_app, backend, smtp_server,
                                                            password_hash):
    app = make_app(backend, **smtp_server.settings())
    provision(app, "alpha", password_hash)
    page = create_user(_admin(app))
    assert "An invitation is on its way to newbie@alpha.example." in flashes(page)
    [mail] = smtp_server.wait_for(1)
    assert mail.rcpt_tos == ["newbie@alpha.example"]
    assert mail.body.startswith("Hello Newbie,") and "7 days" in mail.body
    # the account it speaks of was saved: its link opens the page to choose a password
    assert app.test_client().get(urlsplit(link_in(mail)).path).status_code == 200


def test_invitation_to_an_unreachable_server_is_reported_as_failed(make_app, backend,
                                                                   password_hash):
    app = make_app(backend, smtp_port=_free_port())  # nothing listens there
    provision(app, "alpha", password_hash)
    page = create_user(_admin(app))
    messages = flashes(page)
    assert "User Newbie created." in messages
    assert any(m.startswith("The invitation to newbie@alpha.example could not be sent: "
                            "the mail server could not be reached: ") for m in messages), messages
    assert "on its way" not in page
    assert user_exists(app, "newbie@alpha.example")  # the account stays; the admin can resend


def test_a_refused_recipient_is_reported_with_the_servers_words(make_app, backend,
                                                                refusing_smtp, password_hash):
    app = make_app(backend, **refusing_smtp)
    provision(app, "alpha", password_hash)
    messages = flashes(create_user(_admin(app)))
    assert ("The invitation to newbie@alpha.example could not be sent: the mail server "
            "refused the address: 550 5.1.1 No such mailbox here.") in messages, messages


def _send_reset(app, client, email: str = "user@alpha.example") -> list[str]:
    from qalitel.users.service import find_by_email

    with in_tenant(app, "alpha"):
        user_id = find_by_email(email).id
    edit = f"/t/alpha/users/{user_id}"
    response = client.post(f"{edit}/send-reset", data={"csrf_token": csrf_token(client, edit)})
    assert response.status_code == 302
    return flashes(client.get(response.headers["Location"]).get_data(as_text=True))


def test_reset_link_sent_by_an_admin_reports_failure(make_app, backend, password_hash):
    app = make_app(backend, smtp_port=_free_port())
    provision(app, "alpha", password_hash)
    messages = _send_reset(app, _admin(app))
    assert any(m.startswith("The link to choose a new password could not be sent to "
                            "user@alpha.example: the mail server could not be reached")
               for m in messages), messages
    assert not any("on its way" in m for m in messages)


def test_mail_speaks_the_recipients_language(make_app, backend, smtp_server, password_hash):
    """The user signed in in French last: an English-speaking admin's link reaches them in
    French; after an English sign-in, in English."""
    app = make_app(backend, **smtp_server.settings())
    provision(app, "alpha", password_hash)
    french = app.test_client()
    french.environ_base["HTTP_ACCEPT_LANGUAGE"] = "fr"
    assert login(french, "alpha", "user@alpha.example").status_code == 302
    admin = _admin(app)
    assert any("on its way to user@alpha.example" in m for m in _send_reset(app, admin))
    [mail] = smtp_server.wait_for(1)
    assert mail.body.startswith("Bonjour User alpha,")
    assert mail.message["Subject"] == "Réinitialisez votre mot de passe QALITEL chez Alpha"
    assert login(app.test_client(), "alpha", "user@alpha.example").status_code == 302  # en
    _send_reset(app, admin)
    assert smtp_server.wait_for(2)[1].body.startswith("Hello User alpha,")
