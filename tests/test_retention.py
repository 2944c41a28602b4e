"""Retention, on both backends: the ``retention`` job deletes sign-ins past
``QALITEL_LOGIN_HISTORY_DAYS`` and export files past ``QALITEL_EXPORT_DAYS``; the privacy
page states each retention period from the same settings, in French and English."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest

from core.config import ConfigError, load
from tests.conftest import in_tenant, login, provision

NOW = datetime(2030, 3, 1, 9, tzinfo=UTC)


def _row(html: str, row_id: str) -> str:
    match = re.search(rf'<tr id="{row_id}">(.*?)</tr>', html, re.S)
    assert match, row_id
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", match.group(1))).replace("\u00a0", " ")


def _privacy(app, lang: str, url: str = "/t/alpha/privacy") -> str:
    response = app.test_client().get(url, headers={"Accept-Language": lang})
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_the_privacy_page_states_the_configured_periods(make_app, backend, password_hash):
    app = make_app(backend)
    provision(app, "alpha", password_hash)
    english = _privacy(app, "en")
    assert "180 days" in _row(english, "keep-logins")
    assert "7 days" in _row(english, "keep-exports")
    assert "30 rolling days" in _row(english, "keep-backups")
    assert "60 days after the closure" in _row(english, "keep-closure")
    assert "record number" in _row(english, "keep-access-log")
    french = _privacy(app, "fr")
    assert "180 jours" in _row(french, "keep-logins")
    assert "7 jours" in _row(french, "keep-exports")


def test_changing_a_setting_changes_the_page(make_app, backend, password_hash):
    app = make_app(backend, login_history_days=45, export_days=3, backup_retention_days=12,
                   closure_grace_days=5)
    provision(app, "alpha", password_hash)
    for url in ("/t/alpha/privacy", "/privacy"):
        english = _privacy(app, "en", url)
        assert "45 days" in _row(english, "keep-logins")
        assert "3 days" in _row(english, "keep-exports")
        assert "12 rolling days" in _row(english, "keep-backups")
        closure = _row(english, "keep-closure")
        assert "47 days after the closure" in closure and "5 days of grace" in closure
        french = _privacy(app, "fr", url)
        assert "45 jours" in _row(french, "keep-logins")
        assert "3 jours" in _row(french, "keep-exports")
        assert "47 jours" in _row(french, "keep-closure")
    one = make_app(backend, login_history_days=1, export_days=1)
    assert "1 day" in _row(_privacy(one, "en", "/privacy"), "keep-logins")
    assert "1 day after" in _row(_privacy(one, "en", "/privacy"), "keep-exports")


@pytest.mark.parametrize(("name", "value"), [
    ("QALITEL_LOGIN_HISTORY_DAYS", "0"), ("QALITEL_LOGIN_HISTORY_DAYS", "3651"),
    ("QALITEL_LOGIN_HISTORY_DAYS", "ninety"), ("QALITEL_EXPORT_DAYS", "0"),
    ("QALITEL_EXPORT_DAYS", "91"), ("QALITEL_EXPORT_DAYS", "-7"),
])
def test_bad_retention_settings_are_refused(tmp_path, name, value):
    with pytest.raises(ConfigError, match=name):
        load({"instance_dir": tmp_path}, {name: value})


def test_the_retention_job_deletes_old_sign_ins_only(make_app, backend, password_hash):
    from core.clock import ManualClock, set_clock
    from qalitel.my_data.models import LoginEvent, LoginOutcome

    app = make_app(backend, login_history_days=30)
    set_clock(app, ManualClock(NOW))
    handles = [provision(app, slug, password_hash) for slug in ("alpha", "bravo")]
    for handle in handles:
        with in_tenant(app, handle.slug) as session:
            for days in (31, 30.5, 29, 1):
                session.add(LoginEvent(user_id=handle.user_ids["user"],
                                       outcome=LoginOutcome.SUCCESS,
                                       at=NOW - timedelta(days=days)))
            session.commit()
    result = app.test_cli_runner().invoke(args=["jobs", "run", "retention", "--json"])
    assert result.exit_code == 0, result.output
    [report] = json.loads(result.stdout)["jobs"]
    assert report["outcome"] == "ok"
    assert report["summary"] == {"login_events_deleted": 4, "tenants": 2,
                                 "exports_expired": 0}
    for handle in handles:
        with in_tenant(app, handle.slug) as session:
            kept = sorted(NOW - e.at.replace(tzinfo=UTC) for e in session.query(LoginEvent))
        assert kept == [timedelta(days=1), timedelta(days=29)]


def test_export_files_live_as_long_as_the_setting(make_app, backend, smtp_server,
                                                  password_hash):
    from core.clock import ManualClock, set_clock
    from core.db import db
    from qalitel.exports import jobs
    from qalitel.exports.models import DataExport, ExportState
    from qalitel.my_data import export_request  # noqa: F401  (registers the kind)

    app = make_app(backend, export_days=2, **smtp_server.settings())
    app.config["MAIL_BACKGROUND"] = False
    clock = ManualClock(NOW)
    set_clock(app, clock)
    handle = provision(app, "alpha", password_hash)
    admin = app.test_client()
    assert login(admin, "alpha", handle.admin_email).status_code == 302
    page = admin.get("/t/alpha/admin/export", headers={"Accept-Language": "en"})
    assert "download link valid 2 days" in page.get_data(as_text=True)
    with app.app_context():
        job_id = jobs.request_export("personal", handle.uid, handle.user_ids["user"],
                                     {"prefs": {"lang": "en"}}).id
        db.session.commit()
    assert jobs.process_pending_exports(app) == [job_id]
    [mail] = smtp_server.wait_for(1)
    assert "2 jours" in mail.body or "2 days" in mail.body
    with app.app_context():
        job = db.session.get(DataExport, job_id)
        assert jobs.aware(job.expires_at) == NOW + timedelta(days=2)
        path = job.file_path
    clock.advance(days=1, hours=23)
    run = app.test_cli_runner().invoke(args=["jobs", "run", "retention", "--json"])
    assert json.loads(run.stdout)["jobs"][0]["summary"]["exports_expired"] == 0
    clock.advance(hours=1)
    run = app.test_cli_runner().invoke(args=["jobs", "run", "retention", "--force", "--json"])
    assert run.exit_code == 0, run.output
    assert json.loads(run.stdout)["jobs"][0]["summary"]["exports_expired"] == 1
    with app.app_context():
        assert db.session.get(DataExport, job_id).state is ExportState.EXPIRED
    from pathlib import Path

    assert not Path(path).exists()


def test_inputs_left_by_a_crash_are_swept(make_app, backend):
    import os
    import time

    from qalitel.exports.files import exports_dir
    from qalitel.exports.jobs import expire_exports

    app = make_app(backend)
    folder = exports_dir(app.extensions["qalitel_settings"])
    old, fresh = folder / "900.input.json", folder / "901.input.json"
    for path in (old, fresh):
        path.write_text('{"prefs": {"login": "someone@acme.example"}}')
    hours_ago = time.time() - 3 * 3600
    os.utime(old, (hours_ago, hours_ago))
    expire_exports(app)
    assert not old.exists()  # its request never committed: nobody will build it
    assert fresh.exists()  # maybe a request committing right now
