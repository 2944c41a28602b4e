"""The mail telling client admins of a maintenance request: a template, in each admin's
language, sent only once the request is committed and logged (never for one undone)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from core import platform_transaction
from core.db import db
from maintenance import requests as maintenance_requests
from maintenance.audit import AuditWriteError
from maintenance.models import MaintenanceRequest
from tests.conftest import in_tenant, link_in


@pytest.fixture
def sync_mail(client_world):
    """Mail leaves synchronously: when a call returns, whatever it sent has arrived."""
    client_world.app.config["MAIL_BACKGROUND"] = False
    return client_world


def _set_locale(app, email: str, locale: str | None) -> None:
    from qalitel.users.models import User

    with in_tenant(app, "alpha") as session:
        session.query(User).filter_by(email=email).one().locale = locale
        session.commit()


@pytest.mark.parametrize("unknown", [None, "zz", "../en"])
def test_each_admin_reads_the_request_in_their_language(sync_mail, unknown):
    cw = sync_mail
    _set_locale(cw.app, "second@alpha.example", "en")
    _set_locale(cw.app, "admin@alpha.example", unknown)  # none or no valid one: French
    public_id = cw.request(scope="read-write", hours=1.5)
    mails = {m.rcpt_tos[0]: m for m in cw.mail.wait_for(2)}
    assert set(mails) == cw.alpha_admins
    en_mail, fr_mail = mails["second@alpha.example"], mails["admin@alpha.example"]
    assert en_mail.message["Subject"].startswith("Maintenance access requested for ")
    assert fr_mail.message["Subject"].startswith("Demande d'accès de maintenance pour ")
    english, french = (m.body.replace("\r\n", "\n") for m in (en_mail, fr_mail))
    assert english.startswith("Hello Second Admin,\n")
    assert french.startswith("Bonjour Admin alpha,\n")
    for line in ("Reason: Investigate ticket #42", "Scope: read-write",
                 "Duration: 1.5 hours", "Every access is written to your maintenance"):
        assert line in english, line
    for line in ("Motif\u00a0: Investigate ticket #42", "Portée\u00a0: lecture-écriture",
                 "Durée\u00a0: 1,5 heure\n", "Chaque accès est inscrit"):
        assert line in french, line
    assert "Ticket:" not in english and "\n\n\n" not in english  # no empty ticket line
    for mail, body in ((en_mail, english), (fr_mail, french)):
        assert cw.world.eve.name in body and cw.world.eve.email in body
        assert link_in(mail) == "http://localhost/t/alpha/maintenance/"
        assert cw.world.marker not in body
        assert body.endswith("\n-- \nQALITEL\n")
    with cw.app.app_context():
        assert db.session.query(MaintenanceRequest).filter_by(public_id=public_id).one()


def test_the_mail_waits_for_the_commit(sync_mail):
    """The hooks run with the request stored and logged; the mail leaves after the commit."""
    cw = sync_mail
    seen: list[tuple[int, int]] = []

    def after_notify(_request: MaintenanceRequest) -> None:
        seen.append((len(cw.mail.messages), platform_transaction.pending_callbacks()))

    maintenance_requests.on_request_created.append(after_notify)
    try:
        cw.request()
    finally:
        maintenance_requests.on_request_created.remove(after_notify)
    assert seen == [(0, 1)]  # prepared and queued, nothing sent yet
    assert len(cw.mail.wait_for(2)) == 2


def test_a_request_undone_is_never_mailed(sync_mail):
    cw, app = sync_mail, sync_mail.app
    with app.app_context():
        db.session.execute(text("CREATE TRIGGER test_log_down BEFORE INSERT ON access_log "
                                "BEGIN SELECT RAISE(ABORT, 'log down'); END"))
        db.session.commit()
    with pytest.raises(AuditWriteError):
        cw.request()
    with app.app_context():
        assert db.session.query(MaintenanceRequest).count() == 0
    assert cw.mail.messages == []  # sending is synchronous: nothing left, nothing will
    with app.app_context():
        db.session.execute(text("DROP TRIGGER test_log_down"))
        db.session.commit()
    cw.request()
    assert len(cw.mail.wait_for(2)) == 2
