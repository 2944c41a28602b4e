"""Notifications through a real SMTP server on loopback, on both backends: the assignment mail
after the request's commit (the recipient's language, a link from QALITEL_EXTERNAL_URL), due
soon, overdue and the weekly digest from ``qalitel jobs run-due`` with a moved clock, nothing
sent twice, never to a suspended user, preferences turned off, and a failure recorded, retried
a bounded number of times and shown to the admin."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta

import pytest

from tests.conftest import link_in
from tests.html_forms import submit_untouched
from tests.notify_world import EXTERNAL, TODAY, make_world

pytestmark = pytest.mark.usefixtures("english_clients")
NBSP = "\u00a0"


def _has_title(form) -> bool:
    return "title" in form.names()


def _suspend(world, who: str) -> None:
    from qalitel.users.models import User
    from tenants.context import tdb

    with world.tenant():
        tdb.get(User, world.ids[who]).suspended_at = world.clock()
        tdb.commit()


def _record(world, title: str, assignee: str) -> int:
    from qalitel.records import service
    from qalitel.users.models import User
    from tenants.context import tdb

    with world.tenant():
        record = service.create_nonconformity(tdb.get(User, world.ids["admin"]), title,
                                              assignee_id=world.ids[assignee])
        tdb.commit()
        return record.id


def _sent(box, start: int = 0) -> Counter:
    """(recipient, first subject word after the company) of the messages from ``start``."""
    return Counter((m.rcpt_tos[0].split("@")[0], m.message["Subject"])
                   for m in box.messages[start:])


def test_assignment_mail_after_the_commit_in_the_recipients_language(
        make_app, backend, smtp_server, password_hash):
    world = make_world(make_app, backend, password_hash, **smtp_server.settings())
    admin = world.client()
    made = submit_untouched(admin, "/t/alpha/actions/new", _has_title,
                            title="Calibrate the press", owner=str(world.ids["marie"]),
                            due_date="2030-03-20")
    assert made.status_code == 303, made.get_data(as_text=True)[:2000]
    action_id = int(made.headers["Location"].rsplit("/", 1)[1])
    [mail] = smtp_server.wait_for(1)
    assert mail.rcpt_tos == ["marie@alpha.example"]
    assert mail.message["Subject"] == (f"Alpha{NBSP}: action qui vous est attribuée{NBSP}: "
                                       "Calibrate the press")
    assert mail.body.startswith("Bonjour Marie Curie,")
    assert "20 mars 2030" in mail.body
    assert link_in(mail) == f"{EXTERNAL}/t/alpha/actions/{action_id}"  # never the Host
    assert world.notes() == [("assignment", "marie", "sent", None, 1)]

    made = submit_untouched(admin, "/t/alpha/records/new", _has_title,
                            title="Scratched housings", assignee=str(world.ids["john"]))
    assert made.status_code == 303
    record_id = int(made.headers["Location"].rsplit("/", 1)[1])
    mail = smtp_server.wait_for(2)[1]
    assert mail.rcpt_tos == ["john@alpha.example"]
    assert mail.message["Subject"] == "Alpha: NC-1 is assigned to you"
    assert mail.body.startswith("Hello John Doe,")
    assert link_in(mail) == f"{EXTERNAL}/t/alpha/records/{record_id}"

    # saving untouched, and giving oneself an action, mail nobody
    edit = f"/t/alpha/actions/{action_id}/edit"
    assert submit_untouched(admin, edit, _has_title).status_code in (302, 303)
    assert submit_untouched(admin, "/t/alpha/actions/new", _has_title,
                            title="Mine").status_code == 303
    # a refused form rolls back: nothing queued, nothing sent
    refused = submit_untouched(admin, "/t/alpha/actions/new", _has_title, title="",
                               owner=str(world.ids["john"]))
    assert refused.status_code == 400
    # a suspended user cannot be chosen, so never gets one
    assert len(smtp_server.messages) == 2
    assert [n[:3] for n in world.notes()] == [("assignment", "marie", "sent"),
                                              ("assignment", "john", "sent")]


def test_due_soon_overdue_and_digest_from_run_due_once_each(make_app, backend, smtp_server,
                                                            password_hash):
    world = make_world(make_app, backend, password_hash, **smtp_server.settings())
    world.action("soon", "marie", TODAY + timedelta(2))  # due soon (3 days by default)
    world.action("late", "marie", TODAY - timedelta(3))  # overdue
    world.action("later", "marie", TODAY + timedelta(8))  # in the digest only
    world.action("far", "marie", TODAY + timedelta(16))  # nothing this week
    world.action("finished", "marie", TODAY + timedelta(1), status="done")
    world.action("john's", "john", None)  # no due date: never reminded
    world.action("sam's late", "sam", TODAY - timedelta(1))
    _record(world, "Assigned to John", "john")
    _record(world, "Assigned to Sam", "sam")
    _suspend(world, "sam")

    result = world.app.test_cli_runner().invoke(args=["jobs", "run-due", "--json"])
    report = {j["job"]: j for j in json.loads(result.stdout)["jobs"]}
    assert report["notifications"]["outcome"] == "ok", report["notifications"]
    assert report["notifications"]["summary"] == {"queued": 4, "sent": 4}
    sent = _sent(smtp_server)
    assert sent == Counter({
        ("marie", f"Alpha{NBSP}: action bientôt à échéance{NBSP}: soon"): 1,
        ("marie", f"Alpha{NBSP}: action en retard{NBSP}: late"): 1,
        ("marie", f"Alpha{NBSP}: votre semaine dans QALITEL"): 1,
        ("john", "Alpha: your week in QALITEL"): 1,
    })
    by_subject = {m.message["Subject"]: m for m in smtp_server.messages}
    digest = by_subject[f"Alpha{NBSP}: votre semaine dans QALITEL"].body
    assert "late — en retard depuis le 1 mars 2030" in digest
    assert "soon — échéance le 6 mars 2030" in digest and "later" in digest
    assert "far" not in digest and "finished" not in digest
    soon = by_subject[f"Alpha{NBSP}: action bientôt à échéance{NBSP}: soon"]
    assert "dans 2 jours, le 6 mars 2030" in soon.body
    assert link_in(soon).startswith(f"{EXTERNAL}/t/alpha/actions/")
    john = by_subject["Alpha: your week in QALITEL"].body
    assert "NC-1 Assigned to John" in john and f"{EXTERNAL}/t/alpha/records/" in john
    assert not any("sam" in m.rcpt_tos[0] for m in smtp_server.messages)  # suspended

    assert world.job() == {"queued": 0}  # a second run sends nothing again
    world.clock.advance(days=1)  # Tuesday: no digest, the same reminders already went
    assert world.job() == {"queued": 0}
    assert len(smtp_server.messages) == 4

    world.clock.advance(days=6)  # next Monday, 11 March
    assert world.job() == {"queued": 4, "sent": 4}
    assert _sent(smtp_server, 4) == Counter({
        ("marie", f"Alpha{NBSP}: action en retard{NBSP}: soon"): 1,  # now overdue
        ("marie", f"Alpha{NBSP}: action bientôt à échéance{NBSP}: later"): 1,
        ("marie", f"Alpha{NBSP}: votre semaine dans QALITEL"): 1,
        ("john", "Alpha: your week in QALITEL"): 1,
    })  # "late" went as overdue once for its due date; "far" (9 days) is not due soon
    assert "far" in smtp_server.messages[-2].body or "far" in smtp_server.messages[-1].body
    assert world.job() == {"queued": 0}
    assert len(smtp_server.messages) == 8
    sent_to = {n[1] for n in world.notes() if n[2] != "skipped"}
    assert sent_to == {"marie", "john"} and "sam" not in {n[1] for n in world.notes()}


def test_a_reassignment_is_mailed_from_the_background_after_the_commit(
        make_app, backend, smtp_server, password_hash):
    """The default: mail leaves in a background thread once the request committed, and its
    outcome is recorded there (waited for, never timed)."""
    import threading

    world = make_world(make_app, backend, password_hash, **smtp_server.settings())
    world.app.config["MAIL_BACKGROUND"] = True
    record_id = _record(world, "Wrong label", "john")  # outside a request: no mail
    admin = world.client()
    edit = f"/t/alpha/records/{record_id}/edit"
    saved = submit_untouched(admin, edit, _has_title, assignee=str(world.ids["marie"]))
    assert saved.status_code in (302, 303)
    [mail] = smtp_server.wait_for(1)
    assert mail.rcpt_tos == ["marie@alpha.example"]
    assert f"NC-1 «{NBSP}Wrong label{NBSP}»" in mail.body
    for thread in threading.enumerate():
        if thread.name == "qalitel-notify":
            thread.join(60)
    assert world.notes() == [("assignment", "marie", "sent", None, 1)]
    # the same assignment the same day is not mailed twice
    submit_untouched(admin, edit, _has_title, assignee=str(world.ids["john"]))
    submit_untouched(admin, edit, _has_title, assignee=str(world.ids["marie"]))
    mails = smtp_server.wait_for(2)
    for thread in threading.enumerate():
        if thread.name == "qalitel-notify":
            thread.join(60)
    assert [m.rcpt_tos for m in mails] == [["marie@alpha.example"], ["john@alpha.example"]]
    assert [n[:3] for n in world.notes()] == [("assignment", "marie", "sent"),
                                              ("assignment", "john", "sent")]
