"""Notification settings (the client admin's) and preferences (each user's), on both backends:
they decide what goes, both forms round-trip, hostile input is refused with nothing saved; and
a mail that fails is recorded with its reason, retried a bounded number of times and shown to
the client admin."""

from __future__ import annotations

import dataclasses
import re
from datetime import timedelta

import pytest

from tests.conftest import _free_port
from tests.html_forms import form_of, submit_untouched
from tests.notify_world import TODAY, make_world

pytestmark = pytest.mark.usefixtures("english_clients")
ADMIN_PAGE = "/t/alpha/admin/notifications/"
PREFS = "/t/alpha/preferences"


def _tenant_form(form) -> bool:
    return "digest_weekday" in form.names()


def _prefs_form(form) -> bool:
    return "notify-due_soon_days" in form.names()


def _post(client, url: str, which, drop: tuple[str, ...] = (), **changes: str):
    """Post the form of ``url`` as a browser would, with ``changes`` and ``drop`` (fields
    left out: unchecked boxes, a missing CSRF token)."""
    form = form_of(client.get(url).get_data(as_text=True), which)
    data = form.data(**changes)
    for name in drop:
        data.pop(name, None)
    return client.post(form.action or url, data=data)


def _stored(world) -> tuple[list, list]:
    from sqlalchemy import select

    from qalitel.notifications.models import NotificationPreference, NotificationSettings
    from tenants.context import tdb

    def row(r):
        return {c.key: getattr(r, c.key) for c in r.__table__.columns}

    with world.tenant():
        return ([row(r) for r in tdb.execute(select(NotificationSettings)).scalars()],
                [row(r) for r in tdb.execute(select(NotificationPreference)).scalars()])




def test_preferences_and_tenant_settings_decide_what_goes(make_app, backend, smtp_server,
                                                          password_hash):
    world = make_world(make_app, backend, password_hash, **smtp_server.settings())
    marie = world.client("marie")
    saved = _post(marie, PREFS, _prefs_form, drop=("notify-overdue",),
                  **{"notify-due_soon_days": "10"})
    assert saved.status_code == 302 and saved.headers["Location"].endswith("#notifications")
    admin = world.client()
    assert _post(admin, ADMIN_PAGE, _tenant_form, drop=("digest",)).status_code == 302
    world.action("late", "marie", TODAY - timedelta(2))  # overdue: turned off by marie
    world.action("eight days", "marie", TODAY + timedelta(8))  # within her own 10 days
    world.action("john in eight", "john", TODAY + timedelta(8))  # beyond the company's 3
    assert world.job() == {"queued": 1, "sent": 1}
    [mail] = smtp_server.messages
    assert mail.rcpt_tos == ["marie@alpha.example"] and "eight days" in mail.message["Subject"]
    assert [n[:3] for n in world.notes()] == [("due_soon", "marie", "sent")]  # no digest

    # the company moves to 10 days and a Tuesday digest; John turns his digest off
    john = world.client("john")
    assert _post(john, PREFS, _prefs_form, drop=("notify-digest",)).status_code == 302
    assert _post(admin, ADMIN_PAGE, _tenant_form, due_soon_days="10", digest_weekday="1",
                 digest="y").status_code == 302
    assert world.job() == {"queued": 1, "sent": 1}
    assert smtp_server.messages[-1].rcpt_tos == ["john@alpha.example"]
    world.clock.advance(days=1)  # Tuesday
    assert world.job() == {"queued": 1, "sent": 1}
    digest = smtp_server.messages[-1]
    assert digest.rcpt_tos == ["marie@alpha.example"]
    assert digest.message["Subject"] == "Alpha: your week in QALITEL"  # she signed in in English
    assert len(smtp_server.messages) == 3


def test_a_failure_is_recorded_retried_bounded_and_shown_to_the_admin(
        make_app, backend, smtp_server, password_hash):
    world = make_world(make_app, backend, password_hash, smtp_port=_free_port())  # no server
    world.clock.advance(days=1)  # a Tuesday: no digest
    world.action("late", "john", TODAY - timedelta(1))
    assert world.job() == {"queued": 1, "failed": 1}
    [(kind, who, status, error, attempts)] = world.notes()
    assert (kind, who, status, attempts) == ("overdue", "john", "failed", 1)
    assert error.startswith("the mail server could not be reached: ")

    admin = world.client()
    page = admin.get(ADMIN_PAGE)
    body = page.get_data(as_text=True)
    assert page.status_code == 200
    assert f'href="{ADMIN_PAGE}"' in body  # the admin menu links to it
    assert 'id="notifications-failed"' in body
    row = re.search(r'<tr id="notification-\d+" data-status="failed" class="failed">(.*?)</tr>',
                    body, re.S).group(1)
    assert "Overdue" in row and "John Doe" in row and "late" in row
    assert "the mail server could not be reached: " in row
    assert world.client("john").get(ADMIN_PAGE).status_code == 403

    settings = world.app.extensions["qalitel_settings"]
    world.app.extensions["qalitel_settings"] = dataclasses.replace(
        settings, smtp_port=smtp_server.port)  # the server is back: the retry goes
    assert world.job() == {"queued": 0, "sent": 1}
    assert smtp_server.messages[0].rcpt_tos == ["john@alpha.example"]
    assert world.notes() == [("overdue", "john", "sent", None, 2)]

    world.app.extensions["qalitel_settings"] = settings  # down again, for good
    world.action("late too", "marie", TODAY - timedelta(1))
    for _ in range(7):
        world.job()
    assert world.notes()[1][2:] == ("failed", world.notes()[1][3], 5)  # 5 attempts, no more
    assert world.job() == {"queued": 0}
    assert len(smtp_server.messages) == 1


def test_a_refused_assignment_mail_keeps_the_servers_words(make_app, backend, refusing_smtp,
                                                          password_hash):
    world = make_world(make_app, backend, password_hash, **refusing_smtp)
    admin = world.client()
    made = submit_untouched(admin, "/t/alpha/actions/new", lambda f: "title" in f.names(),
                            title="Check the gauge", owner=str(world.ids["john"]))
    assert made.status_code == 303  # the action is saved whatever the mail server says
    assert world.notes() == [("assignment", "john", "failed",
                              "the mail server refused the address: "
                              "550 5.1.1 No such mailbox here", 1)]
    body = admin.get(ADMIN_PAGE).get_data(as_text=True)
    assert "550 5.1.1 No such mailbox here" in body


def test_a_suspended_recipient_is_skipped_at_the_retry(make_app, backend, password_hash):
    from qalitel.users.models import User
    from tenants.context import tdb

    world = make_world(make_app, backend, password_hash, smtp_port=_free_port())
    world.clock.advance(days=1)  # a Tuesday: no digest
    world.action("late", "sam", TODAY - timedelta(1))
    assert world.job() == {"queued": 1, "failed": 1}
    with world.tenant():
        tdb.get(User, world.ids["sam"]).suspended_at = world.clock()
        tdb.commit()
    assert world.job() == {"queued": 0, "skipped": 1}
    assert world.notes() == [("overdue", "sam", "skipped", "suspended", 2)]
    body = world.client().get(ADMIN_PAGE).get_data(as_text=True)
    assert "the recipient is suspended" in body


def test_both_forms_round_trip(make_app, backend, password_hash):
    world = make_world(make_app, backend, password_hash)
    admin = world.client()
    assert submit_untouched(admin, ADMIN_PAGE, _tenant_form).status_code == 302
    assert submit_untouched(admin, PREFS, _prefs_form).status_code == 302
    assert _stored(world) == ([], [])  # the defaults, untouched: nothing written
    assert _post(admin, ADMIN_PAGE, _tenant_form, drop=("overdue",), due_soon_days="5",
                 digest_weekday="4").status_code == 302
    assert _post(admin, PREFS, _prefs_form, drop=("notify-assignment",),
                 **{"notify-due_soon_days": "7"}).status_code == 302
    before = _stored(world)
    [tenant], [mine] = before
    assert (tenant["due_soon_days"], tenant["digest_weekday"], tenant["overdue"]) == (5, 4, False)
    assert (mine["due_soon_days"], mine["assignment"], mine["digest"]) == (7, False, True)
    world.clock.advance(hours=1)
    assert submit_untouched(admin, ADMIN_PAGE, _tenant_form).status_code == 302
    assert submit_untouched(admin, PREFS, _prefs_form).status_code == 302
    assert _stored(world) == before  # saved untouched: nothing changed, not even the date


def test_hostile_input_on_both_forms_is_refused_and_saves_nothing(make_app, backend,
                                                                  password_hash):
    world = make_world(make_app, backend, password_hash)
    admin = world.client()
    for bad in ({"due_soon_days": "0"}, {"due_soon_days": "61"}, {"due_soon_days": "abc"},
                {"due_soon_days": ""}, {"due_soon_days": "3\x00"}, {"due_soon_days": "9" * 40},
                {"digest_weekday": "7"}, {"digest_weekday": "monday"},
                {"digest_weekday": "-1"}):
        response = _post(admin, ADMIN_PAGE, _tenant_form, overdue="", **bad)
        assert response.status_code == 400, bad
        assert 'class="field-error"' in response.get_data(as_text=True)
    assert _post(admin, ADMIN_PAGE, _tenant_form, drop=("csrf_token",),
                 due_soon_days="5").status_code == 400
    for bad in ("0", "61", "abc", "1e3", "-3", "9" * 40):
        response = _post(admin, PREFS, _prefs_form, **{"notify-due_soon_days": bad})
        assert response.status_code == 400, bad
        assert 'id="notifications"' in response.get_data(as_text=True)
    assert _post(admin, PREFS, _prefs_form, drop=("notify-csrf_token",),
                 **{"notify-due_soon_days": "5"}).status_code == 400
    john = world.client("john")
    form = form_of(john.get(PREFS).get_data(as_text=True), _prefs_form)
    refused = john.post("/t/alpha/admin/notifications/settings",
                        data={"csrf_token": form.data()["notify-csrf_token"][0],
                              "due_soon_days": "5", "digest_weekday": "2"})
    assert refused.status_code == 403
    assert _stored(world) == ([], [])


def test_the_admin_page_is_paginated(make_app, backend, password_hash):
    from qalitel.notifications.models import Notification
    from tenants.context import tdb

    world = make_world(make_app, backend, password_hash)
    with world.tenant():
        tdb.add_all(Notification(key=f"digest:{world.ids['john']}:2030-W{n:02d}", kind="digest",
                                 user_id=world.ids["john"], subject=f"digest {n}",
                                 status="sent", attempts=1, created_at=world.clock())
                    for n in range(1, 31))
        tdb.commit()
    admin = world.client()

    def rows(query: str = "") -> list[str]:
        body = admin.get(ADMIN_PAGE + query).get_data(as_text=True)
        return re.findall(r"<td>(digest \d+)</td>", body)

    assert rows() == [f"digest {n}" for n in range(30, 5, -1)]  # 25, newest first
    assert rows("?page=2") == [f"digest {n}" for n in range(5, 0, -1)]
    assert rows("?page=99") == rows("?page=2")  # past the end: the last page
    for bad in ("abc", "-1", "0", "9" * 30):
        assert rows(f"?page={bad}") == rows()


def test_nothing_is_queued_for_an_erased_user(make_app, backend, smtp_server, password_hash):
    from qalitel.users.models import TOMBSTONE_DOMAIN, User
    from tenants.context import tdb

    world = make_world(make_app, backend, password_hash, **smtp_server.settings())
    world.action("late", "john", TODAY - timedelta(1))
    with world.tenant():  # what an erasure leaves: a pseudonymous tombstone, never mailed
        john = tdb.get(User, world.ids["john"])
        john.email, john.suspended_at = f"x1@{TOMBSTONE_DOMAIN}", None
        tdb.commit()
    assert world.job() == {"queued": 0}
    assert smtp_server.messages == [] and "john" not in {n[1] for n in world.notes()}
    assert {n[2:4] for n in world.notes()} <= {("skipped", "empty")}  # others' empty digests
