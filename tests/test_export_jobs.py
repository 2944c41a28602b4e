"""The full export in the app: a client admin requests it, ``process_pending_exports`` builds
it, the requester gets a mail with a link valid 7 days, only they can download it, it
answers 410 once expired; one export at a time; a failure shows its error and retries."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import csrf_token, link_in, login, provision
from tests.export_world import make_tenant

PAGE = "/t/acme/admin/export"


@pytest.fixture
def world(make_app, backend, smtp_server, password_hash, english_clients):
    from core.clock import ManualClock, set_clock

    app = make_app(backend, **smtp_server.settings())
    app.config["MAIL_BACKGROUND"] = False
    clock = ManualClock(datetime(2030, 3, 1, 9, tzinfo=UTC))
    set_clock(app, clock)
    handle = make_tenant(app, "acme", password_hash)
    other = provision(app, "bravo", password_hash)
    return app, clock, handle, other, smtp_server


def signed_in(app, slug: str, email: str):
    client = app.test_client()
    assert login(client, slug, email).status_code == 302
    return client


def request_export(client):
    return client.post(PAGE, data={"csrf_token": csrf_token(client, PAGE)})


def process(app) -> list[int]:
    from qalitel.exports.jobs import process_pending_exports

    return process_pending_exports(app)


def test_request_mail_download_expiry(world):
    app, clock, handle, other, mailbox = world
    admin = signed_in(app, "acme", handle.admin_email)
    page = admin.get(PAGE)
    assert page.status_code == 200 and "Request a full export" in page.get_data(as_text=True)
    assert 'href="/t/acme/admin/export"' in admin.get("/t/acme/").get_data(as_text=True)

    assert request_export(admin).status_code == 302
    again = request_export(admin)
    assert again.status_code == 409
    assert "already being prepared" in again.get_data(as_text=True)
    assert "Waiting to start" in admin.get(PAGE).get_data(as_text=True)
    assert mailbox.messages == []

    assert len(process(app)) == 1
    assert process(app) == []  # nothing left to do
    [mail] = mailbox.wait_for(1)
    assert mail.rcpt_tos == [handle.admin_email]
    assert "Acme" in mail.message["Subject"] and "7 days" in mail.body
    link = link_in(mail)
    assert link.startswith("http://localhost/t/acme/exports/")
    path = urlsplit(link).path

    got = admin.get(path)
    assert got.status_code == 200
    assert got.headers["Content-Disposition"].startswith("attachment;")
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    assert "no-store" in got.headers["Cache-Control"]
    with zipfile.ZipFile(io.BytesIO(got.data)) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    assert manifest["tenant"]["uid"] == handle.uid
    assert "Ready" in admin.get(PAGE).get_data(as_text=True)

    user = signed_in(app, "acme", handle.user_email)
    assert user.get(path).status_code == 404  # another user of the same tenant
    assert user.get(PAGE).status_code == 403
    stranger = signed_in(app, "bravo", other.admin_email)
    assert stranger.get(path.replace("/t/acme/", "/t/bravo/")).status_code == 404
    assert admin.get(path[:-3] + "xyz").status_code == 404  # a forged token
    anonymous = app.test_client()
    assert anonymous.get(path).status_code == 302  # to the sign-in page

    clock.advance(days=8)
    expired = admin.get(path)
    assert expired.status_code == 410
    assert "expired" in expired.get_data(as_text=True).lower()
    from qalitel.exports.jobs import expire_exports

    files = list((app.extensions["qalitel_settings"].instance_dir / "exports").glob("*.zip"))
    assert len(files) == 1
    assert expire_exports(app) == 1
    assert not files[0].exists()
    assert admin.get(path).status_code == 410
    assert request_export(admin).status_code == 302  # a new one may be asked for


def test_a_failure_shows_its_error_and_retry_works(world, monkeypatch):
    from qalitel.exports import jobs

    app, _clock, handle, _other, mailbox = world
    admin = signed_in(app, "acme", handle.admin_email)

    def broken(job, path: Path) -> None:
        raise OSError("No space left on device")

    real = jobs._kinds["tenant"]
    monkeypatch.setitem(jobs._kinds, "tenant", broken)
    assert request_export(admin).status_code == 302
    assert len(process(app)) == 1
    page = admin.get(PAGE).get_data(as_text=True)
    assert "Failed" in page and "No space left on device" in page
    assert mailbox.messages == []
    assert request_export(admin).status_code == 302  # a failed one does not block the next

    monkeypatch.setitem(jobs._kinds, "tenant", real)
    from core.db import db
    from qalitel.exports.models import DataExport, ExportState

    with app.app_context():
        db.session.query(DataExport).filter_by(state=ExportState.PENDING).delete()
        db.session.commit()
        failed = db.session.query(DataExport).one()
    retry = f"{PAGE}/{failed.id}/retry"
    assert admin.post(retry, data={"csrf_token": csrf_token(admin, PAGE)}).status_code == 302
    assert process(app) == [failed.id]
    with app.app_context():
        job = db.session.get(DataExport, failed.id)
        assert job.state is ExportState.READY and job.attempts == 2 and job.error is None
    mailbox.wait_for(1)
    again = admin.post(retry, data={"csrf_token": csrf_token(admin, PAGE)})
    assert again.status_code == 409 and "Only a failed export" in again.get_data(as_text=True)


def test_one_worker_claims_a_job_and_a_dead_one_is_reclaimed(world):
    from core import clock as core_clock
    from core.db import db
    from qalitel.exports import jobs
    from qalitel.exports.models import DataExport, ExportState

    app, clock, handle, _other, _mailbox = world
    with app.app_context():
        job = jobs.request_export("tenant", handle.uid, handle.user_ids["admin"])
        db.session.commit()
        job_id = job.id
        assert jobs._claim(job_id, core_clock.now()) is True
        assert jobs._claim(job_id, core_clock.now()) is False  # the other worker
    assert process(app) == []  # running, its worker presumed alive
    clock.advance(hours=3)
    assert process(app) == [job_id]
    with app.app_context():
        job = db.session.get(DataExport, job_id)
        assert job.state is ExportState.READY and job.attempts == 2


def test_another_kind_uses_the_same_machinery(world, monkeypatch):
    from core.db import db
    from qalitel.exports import jobs

    app, _clock, handle, _other, mailbox = world
    built: list[int] = []

    def personal(job: jobs.ExportJob, path: Path) -> None:
        built.append(job.subject_user_id)
        with zipfile.ZipFile(path, "x") as zf:
            zf.writestr("me.json", json.dumps({"user": job.subject_user_id}))

    from qalitel.my_data import export_request  # noqa: F401  (the real kind, restored after)

    monkeypatch.setitem(jobs._kinds, "personal", personal)
    with app.app_context():
        jobs.request_export("personal", handle.uid, handle.user_ids["user"])
        jobs.request_export("personal", handle.uid, handle.user_ids["admin"])
        db.session.commit()
        with pytest.raises(jobs.ExportBusyError):  # "Your export is already being…"
            jobs.request_export("personal", handle.uid, handle.user_ids["user"])
        db.session.rollback()
    assert len(process(app)) == 2
    assert sorted(built) == sorted(handle.user_ids.values())
    mails = mailbox.wait_for(2)
    assert {m.rcpt_tos[0] for m in mails} == {handle.user_email, handle.admin_email}
    # neither signed in yet: the platform's default language
    assert all("vos données personnelles" in m.body for m in mails)
    user = signed_in(app, "acme", handle.user_email)
    mine = next(m for m in mails if m.rcpt_tos == [handle.user_email])
    assert user.get(urlsplit(link_in(mine)).path).status_code == 200
    theirs = next(m for m in mails if m.rcpt_tos == [handle.admin_email])
    assert user.get(urlsplit(link_in(theirs)).path).status_code == 404


def test_the_page_is_for_admins_only(world):
    app, _clock, handle, _other, _mailbox = world
    user = signed_in(app, "acme", handle.user_email)
    assert user.get(PAGE).status_code == 403
    assert user.post(PAGE, data={"csrf_token": csrf_token(user, "/t/acme/")}).status_code == 403
    assert app.test_client().get(PAGE).status_code == 302


def test_a_retry_while_another_export_waits_is_refused(world, monkeypatch):
    from core.db import db
    from qalitel.exports import jobs
    from qalitel.exports.models import DataExport, ExportState

    app, _clock, handle, _other, _mailbox = world
    admin = signed_in(app, "acme", handle.admin_email)

    def broken(job, path: Path) -> None:
        raise RuntimeError("the disk went away")

    monkeypatch.setitem(jobs._kinds, "tenant", broken)
    assert request_export(admin).status_code == 302
    process(app)
    assert request_export(admin).status_code == 302  # a new one, pending
    with app.app_context():
        failed = db.session.query(DataExport).filter_by(state=ExportState.FAILED).one()
    refused = admin.post(f"{PAGE}/{failed.id}/retry",
                         data={"csrf_token": csrf_token(admin, PAGE)})
    assert refused.status_code == 409
    assert "already being prepared" in refused.get_data(as_text=True)
    with app.app_context():
        states = sorted(j.state.value for j in db.session.query(DataExport))
    assert states == ["failed", "pending"]
    other = signed_in(app, "bravo", world[3].admin_email)
    forged = other.post(f"/t/bravo/admin/export/{failed.id}/retry",
                        data={"csrf_token": csrf_token(other, "/t/bravo/admin/export")})
    assert forged.status_code == 404  # another tenant's export


def test_a_worker_presumed_dead_does_not_overwrite_the_one_that_took_over(world, monkeypatch):
    import threading

    from core.db import db
    from qalitel.exports import jobs
    from qalitel.exports.models import DataExport, ExportState

    app, clock, handle, _other, mailbox = world
    real = jobs._kinds["tenant"]
    calls: list[int] = []
    taken_over: list[list[int]] = []

    def builder(job, path: Path) -> None:
        calls.append(job.id)
        if len(calls) == 1:  # the first worker is slow: meanwhile it is presumed dead
            clock.advance(hours=3)
            other = threading.Thread(target=lambda: taken_over.append(process(app)))
            other.start()
            other.join()
        real(job, path)

    monkeypatch.setitem(jobs._kinds, "tenant", builder)
    with app.app_context():
        job_id = jobs.request_export("tenant", handle.uid, handle.user_ids["admin"]).id
        db.session.commit()
    assert process(app) == [job_id]
    assert taken_over == [[job_id]] and calls == [job_id, job_id]
    with app.app_context():
        job = db.session.get(DataExport, job_id)
        assert job.state is ExportState.READY and job.attempts == 2
        kept = job.file_path
    files = list((app.extensions["qalitel_settings"].instance_dir / "exports").glob("*"))
    assert [str(f) for f in files] == [kept]  # the first worker's copy was discarded
    assert len(mailbox.wait_for(1)) == 1


def test_an_admin_no_longer_admin_cannot_download_the_full_export(world):
    from qalitel.users.models import Profile, User
    from tests.conftest import in_tenant

    app, _clock, handle, _other, mailbox = world
    admin = signed_in(app, "acme", handle.admin_email)
    assert request_export(admin).status_code == 302
    process(app)
    path = urlsplit(link_in(mailbox.wait_for(1)[0])).path
    with in_tenant(app, "acme") as session:
        session.get(User, handle.user_ids["admin"]).profile = Profile.MANAGER
        session.commit()
    assert admin.get(path).status_code == 403
