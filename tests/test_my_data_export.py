"""The personal export through the background machinery, on both backends: the page
queues a ``personal`` export, ``process_pending_exports`` builds it, the user is mailed a
link; the ZIP holds everything a schema scan finds about the person, and the preferences
their cookie held; one request a day; a failure shows its error and retries; another
user's link or id is a 404, an expired one a 410."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import csrf_token, link_in
from tests.my_data_world import build_rich_world, client_for, scan_for, visible_to


@pytest.fixture
def world(make_app, backend, smtp_server, password_hash):
    from core.clock import ManualClock, set_clock

    app = make_app(backend, **smtp_server.settings())
    app.config["MAIL_BACKGROUND"] = False
    clock = ManualClock(datetime(2030, 3, 1, 9, tzinfo=UTC))
    set_clock(app, clock)
    world = build_rich_world(app, password_hash)
    world.clock, world.mailbox = clock, smtp_server
    return world


def page(world) -> str:
    return f"/t/{world.slug}/my-data"


def ask(client, world):
    return client.post(f"{page(world)}/download",
                       data={"csrf_token": csrf_token(client, page(world))})


def process(world) -> list[int]:
    from qalitel.exports.jobs import process_pending_exports

    return process_pending_exports(world.app)


def exports_dir(world) -> Path:
    return world.app.extensions["qalitel_settings"].instance_dir / "exports"


def jobs(world):
    from core.db import db
    from qalitel.exports.models import DataExport

    with world.app.app_context():
        return [(j.id, j.kind, j.subject_user_id, j.state.value)
                for j in db.session.query(DataExport).order_by(DataExport.id)]


def test_the_background_export_holds_everything_about_the_person(world):
    """Acceptance: the ZIP built by the job holds every row a scan of the live schema finds
    about the person, and the preferences their cookie held when they asked."""
    from tenants.context import tdb

    user = client_for(world, "user1")
    assert ask(user, world).status_code == 302
    html = user.get(page(world)).get_data(as_text=True)
    assert "Waiting to start" in html and "being prepared" in html
    [inputs] = exports_dir(world).glob("*.input.json")
    assert json.loads(inputs.read_text())["prefs"]["login"] == world.emails["user1"]
    assert world.mailbox.messages == []

    [job_id] = process(world)
    assert not inputs.exists()  # the cookie's content lived as long as the job
    [mail] = world.mailbox.wait_for(1)
    assert mail.rcpt_tos == [world.emails["user1"]]
    assert mail.message["Subject"] == "Your personal data export from Acme is ready"
    assert "personal data held by Acme" in mail.body and "7 days" in mail.body
    mailed = user.get(urlsplit(link_in(mail)).path)
    assert mailed.status_code == 200 and mailed.mimetype == "application/zip"
    listed = user.get(page(world)).get_data(as_text=True)
    assert f"/my-data/exports/{job_id}" in listed and "Ready" in listed
    from_page = user.get(f"{page(world)}/exports/{job_id}")
    assert from_page.status_code == 200 and from_page.data == mailed.data
    assert "no-store" in from_page.headers["Cache-Control"]

    archive = zipfile.ZipFile(io.BytesIO(mailed.data))
    manifest = json.loads(archive.read("manifest.json"))
    for name, entry in manifest["files"].items():
        assert hashlib.sha256(archive.read(name)).hexdigest() == entry["sha256"]
    assert "csv/nonconformities.csv" in archive.namelist()
    data = json.loads(archive.read("data.json"))
    assert data["preferences"][0]["login"] == world.emails["user1"]
    assert "password_hash" not in data["users"][0]
    with world.app.app_context(), world.context():
        person = world.user("user1")
        scan = scan_for(tdb, person.id, person.name, person.email, visible_to(tdb, person.id))
    assert sum(len(rows) for rows in scan.values()) > 5
    for table, rows in scan.items():
        for row in rows:
            assert row in data[table], f"{table} row {row} missing from the export"


def test_one_request_a_day(world):
    user = client_for(world, "user1")
    assert ask(user, world).status_code == 302
    busy = ask(user, world)
    assert busy.status_code == 409 and "already being prepared" in busy.get_data(as_text=True)
    process(world)
    world.clock.advance(hours=23)
    again = ask(user, world)
    assert again.status_code == 429
    assert int(again.headers["Retry-After"]) == 3600
    body = again.get_data(as_text=True)
    # 09:00 UTC, said in the reader's time zone (Europe/Paris by default)
    assert "in the last 24 hours" in body and "Mar 2, 2030, 10:00\u202fAM" in body
    assert len(jobs(world)) == 1  # nothing half-done
    other = client_for(world, "user2")
    assert ask(other, world).status_code == 302  # the limit is per user
    world.clock.advance(hours=1)
    assert ask(user, world).status_code == 302
    assert [j[3] for j in jobs(world)] == ["ready", "pending", "pending"]


def test_a_failure_shows_its_error_and_the_retry_reads_the_cookie_again(world, monkeypatch):
    from qalitel.exports import jobs as machinery
    from qalitel.my_data import export_request  # noqa: F401  (registers the kind)

    def broken(job, path: Path) -> None:
        raise OSError("No space left on device")

    real = machinery._kinds["personal"]
    monkeypatch.setitem(machinery._kinds, "personal", broken)
    user = client_for(world, "user1")
    assert ask(user, world).status_code == 302
    [job_id] = process(world)
    html = user.get(page(world)).get_data(as_text=True)
    assert "Failed" in html and "No space left on device" in html
    assert f"/my-data/exports/{job_id}/retry" in html
    assert list(exports_dir(world).glob("*.input.json")) == []
    assert world.mailbox.messages == []
    assert user.get(f"{page(world)}/exports/{job_id}").status_code == 404  # no file

    retry = f"{page(world)}/exports/{job_id}/retry"
    assert user.post(retry).status_code == 400  # no CSRF token
    other = client_for(world, "user2")
    forged = other.post(retry, data={"csrf_token": csrf_token(other, page(world))})
    assert forged.status_code == 404  # somebody else's export
    monkeypatch.setitem(machinery._kinds, "personal", real)
    assert user.post(retry, data={"csrf_token": csrf_token(user, page(world))}
                     ).status_code == 302
    assert process(world) == [job_id]
    [mail] = world.mailbox.wait_for(1)
    data = json.loads(zipfile.ZipFile(io.BytesIO(
        user.get(urlsplit(link_in(mail)).path).data)).read("data.json"))
    assert data["preferences"][0]["login"] == world.emails["user1"]
    again = user.post(retry, data={"csrf_token": csrf_token(user, page(world))})
    assert again.status_code == 409
    assert "Only a failed export" in again.get_data(as_text=True)


def test_links_and_ids_of_another_user_and_expiry(world):
    user = client_for(world, "user1")
    assert ask(user, world).status_code == 302
    [job_id] = process(world)
    path = urlsplit(link_in(world.mailbox.wait_for(1)[0])).path
    mine = f"{page(world)}/exports/{job_id}"
    for key in ("user2", "admin"):  # even an administrator: it is not theirs
        other = client_for(world, key)
        assert other.get(path).status_code == 404, key
        assert other.get(mine).status_code == 404, key
    for forged in ("999999", "0", "abc", "1e3", "-1", "99999999999"):
        assert user.get(f"{page(world)}/exports/{forged}").status_code == 404, forged
    assert user.get(path[:-3] + "xyz").status_code == 404  # a forged token
    anonymous = world.app.test_client()
    assert anonymous.get(mine).status_code == 302  # to the sign-in page

    world.clock.advance(days=7, minutes=1)
    assert user.get(path).status_code == 410
    assert user.get(mine).status_code == 410
    assert "Expired" in user.get(page(world)).get_data(as_text=True)
    from qalitel.exports.jobs import expire_exports

    assert expire_exports(world.app) == 1
    assert list(exports_dir(world).glob("*.zip")) == []
    assert user.get(mine).status_code == 410


def test_download_and_retry_need_csrf(world):
    user = client_for(world, "user1")
    assert user.post(f"{page(world)}/download").status_code == 400
    assert user.post(f"{page(world)}/download", data={"csrf_token": "forged"}).status_code == 400
    assert jobs(world) == []


def test_an_erasure_deletes_the_persons_exports_at_once(world):
    from core.db import db
    from qalitel.exports.models import DataExport, ExportState
    from qalitel.my_data.models import ErasureRequest
    from tenants.context import tdb

    user = client_for(world, "user1")
    assert ask(user, world).status_code == 302
    process(world)
    world.clock.advance(days=1, minutes=1)
    assert ask(user, world).status_code == 302  # the next day's, still pending
    assert len(list(exports_dir(world).glob("*.zip"))) == 1
    assert user.post(f"{page(world)}/erasure",
                     data={"csrf_token": csrf_token(user, page(world))}).status_code == 302
    with world.app.app_context(), world.context():
        request_id = tdb.query(ErasureRequest).one().id
    admin = client_for(world, "admin")
    token = csrf_token(admin, f"/t/{world.slug}/erasure-requests/")
    assert admin.post(f"/t/{world.slug}/erasure-requests/{request_id}/approve",
                      data={"csrf_token": token}).status_code == 302
    assert list(exports_dir(world).glob("*")) == []  # no file, no inputs
    with world.app.app_context():
        states = [j.state for j in db.session.query(DataExport).order_by(DataExport.id)]
    assert states == [ExportState.EXPIRED, ExportState.FAILED]
    assert process(world) == []


def test_the_mail_reads_in_the_users_language(world):
    from tenants.context import tdb

    user = client_for(world, "user1")
    with world.app.app_context(), world.context():
        world.user("user1").locale = "fr"
        tdb.commit()
    assert ask(user, world).status_code == 302
    process(world)
    [mail] = world.mailbox.wait_for(1)
    assert mail.message["Subject"] == "L’export de vos données personnelles chez Acme est prêt"
    assert "vos données personnelles détenues par Acme" in mail.body
    assert "7 jours" in mail.body and "Former user" not in mail.body
