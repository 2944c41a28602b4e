"""Closure on both backends: no grace and no retention leave nothing after one closure run;
a dropped tenant can still be restored by staff as a new tenant until its backups' window
ends; and bad input (unknown or already closed tenant, reopening an active or dropped one,
a bad reason) gets a clear message, exit 2, and changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from flask_babel import force_locale

from core import dates
from core.clock import ManualClock, set_clock
from tests.backup_world import TITLE, BackupWorld, make_world
from tests.closure_world import leftovers, owned, record_json, run_closures, status

START = datetime(2030, 6, 1, 3, 0, tzinfo=UTC)


@pytest.fixture
def world(make_app, backend, tmp_path, password_hash) -> BackupWorld:
    made = make_world(make_app, backend, tmp_path, password_hash, backup_retention_days=0)
    made.app.config["MAIL_BACKGROUND"] = False  # no SMTP server: the send fails, logged
    return made


def test_no_grace_no_retention_one_run_leaves_nothing(world, backend):
    clock = ManualClock(START)
    set_clock(world.app, clock)
    assert world.run("backup", "run", "acme").exit_code == 0
    before = owned(world)
    clock.advance(minutes=1)
    result = world.run("tenants", "close", "acme")
    assert result.exit_code == 0 and "dropped" in result.output, result.output
    assert status(world)["dropped_at"] is not None  # grace 0: at once
    clock.advance(minutes=1)
    report = {j["job"]: j for j in world.json("jobs", "run-due")["jobs"]}  # what cron runs
    assert report["closures"]["outcome"] == "ok", report["closures"]
    assert report["closures"]["summary"]["purged"] == ["acme"]
    assert leftovers(world, before, backend) == []
    record = record_json(world)["record"]
    assert record["status"] == "purged"
    assert sum(i["kind"] == "backup-copy" for i in record["items"]) == 2


def test_a_dropped_tenant_is_restored_as_a_new_one_until_its_window_ends(
        make_app, backend, tmp_path, password_hash):
    from core.db import db
    from qalitel.records.models import NonConformity
    from tenants.provisioning import destroy_tenant
    from tenants.service import get_tenant
    from tests.conftest import in_tenant

    world = make_world(make_app, backend, tmp_path, password_hash)
    world.app.config["MAIL_BACKGROUND"] = False
    assert world.run("backup", "run", "acme").exit_code == 0
    assert world.run("tenants", "close", "acme").exit_code == 0
    assert status(world)["dropped_at"] is not None
    refused = world.run("backup", "restore", "acme", "1")
    assert refused.exit_code == 2 and "--as" in refused.output
    restored = world.run("backup", "restore", "acme", "1", "--as", "acme-back")
    assert restored.exit_code == 0, restored.output
    with in_tenant(world.app, "acme-back") as session:
        assert TITLE in {r.title for r in session.query(NonConformity)}
    with world.app.app_context():
        destroy_tenant(world.settings, get_tenant("acme-back"))
        db.session.remove()


def _snapshot(world: BackupWorld) -> dict:
    return {**status(world), "records": len(world.catalogue())}


@pytest.mark.parametrize(("args", "message"), [
    (("close", "nobody"), "no tenant 'nobody'"),
    (("close", "Bad_Slug"), "invalid slug"),
    (("reopen", "nobody"), "no tenant 'nobody'"),
    (("reopen", "acme"), "is active: only a closed tenant is reopened"),
    (("close", "acme", "--reason", "bad\x00reason"), "reason:"),
    (("close", "acme", "--reason", "x" * 501), "reason:"),
    (("deletion-record", "acme"), "it has no deletion record"),
    (("deletion-record",), "name a tenant"),
])
def test_bad_input_is_refused_and_changes_nothing(world, args, message):
    before = _snapshot(world)
    result = world.run("tenants", *args)
    assert result.exit_code == 2 and message in result.output, result.output
    assert _snapshot(world) == before
    assert world.app.test_client().get("/t/acme/login").status_code == 200


def test_closing_twice_or_reopening_after_the_drop_is_refused(world):
    assert world.run("tenants", "close", "acme", "--reason", "contract ended").exit_code == 0
    closed = _snapshot(world)
    again = world.run("tenants", "close", "acme")
    assert again.exit_code == 2 and "is closed since" in again.output
    reopen = world.run("tenants", "reopen", "acme")
    assert reopen.exit_code == 2 and "cannot be reopened" in reopen.output
    assert "backup restore acme BACKUP_ID --as NEWSLUG" in reopen.output
    assert _snapshot(world) == closed and closed["reason"] == "contract ended"
    assert world.app.test_client().get("/t/acme/login").status_code == 410


def test_reopen_inside_the_grace_period(make_app, backend, tmp_path, password_hash):
    world = make_world(make_app, backend, tmp_path, password_hash, closure_grace_days=2)
    world.app.config["MAIL_BACKGROUND"] = False
    clock = ManualClock(START)
    set_clock(world.app, clock)
    assert world.run("tenants", "close", "acme").exit_code == 0
    clock.advance(timedelta(days=2) - timedelta(minutes=1))
    assert run_closures(world).dropped == []
    assert world.run("tenants", "reopen", "acme").exit_code == 0
    clock.advance(days=10)
    assert run_closures(world).dropped == []  # active again: nothing to drop
    assert world.app.test_client().get("/t/acme/login").status_code == 200
    later = world.run("tenants", "deletion-record", "acme")
    assert later.exit_code == 2  # reopened before anything was removed: no record kept


def test_the_privacy_page_states_the_purge_date_rule(make_app):
    import re

    app = make_app("sqlite", closure_grace_days=7, backup_retention_days=30)
    client = app.test_client()

    def text(headers: dict) -> str:
        page = client.get("/privacy", headers=headers).get_data(as_text=True)
        return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)).replace("\u00a0", " ")

    assert ("plus 7 days during which SCOQI can reopen your space, plus the 30-day backup "
            "window, plus at most 30 days") in text({"Accept-Language": "en"})
    assert ("plus 7 jours pendant lesquels SCOQI peut rouvrir votre espace, plus la période "
            "de sauvegarde de 30 jours, plus 30 jours au plus") in text({})


def test_each_admin_is_mailed_in_their_language_with_the_export_link(
        make_app, backend, tmp_path, password_hash, smtp_server):
    from qalitel.closure import mail as closure_mail
    from qalitel.users.models import Profile, User
    from tests.conftest import in_tenant

    world = make_world(make_app, backend, tmp_path, password_hash, **smtp_server.settings())
    world.app.config["MAIL_BACKGROUND"] = False
    with in_tenant(world.app, "acme") as session:
        session.query(User).filter_by(email="admin@acme.example").one().locale = "en"
        session.add(User(email="other@acme.example", name="Other admin", locale=None,
                         password_hash=password_hash, profile=Profile.ADMIN))
        session.commit()
    saved = list(closure_mail._export_links)
    closure_mail.on_closure_export_link(
        lambda tenant: f"https://qalitel.example/exports/{tenant.slug}-final.zip")
    try:
        assert world.run("tenants", "close", "acme").exit_code == 0
    finally:
        closure_mail._export_links[:] = saved
    by_address = {m.rcpt_tos[0]: m for m in smtp_server.wait_for(2)}
    english, french = by_address["admin@acme.example"], by_address["other@acme.example"]
    due = status(world)["purge_due_at"]
    with world.app.test_request_context("/"):  # dates in each admin's language
        with force_locale("en"):
            due_en = dates.date_text(due)
        with force_locale("fr"):
            due_fr = dates.date_text(due)
    assert "Every copy of your data" in english.body and due_en in english.body
    assert "Toutes les copies de vos données" in french.body and due_fr in french.body
    for message in (english, french):
        assert "https://qalitel.example/exports/acme-final.zip" in message.body
        assert "protectiondedonnees" not in message.body


def test_copies_that_cannot_be_deleted_are_retried_and_reported_past_the_purge_date(
        make_app, backend, tmp_path, password_hash):
    world = make_world(make_app, backend, tmp_path, password_hash)
    world.app.config["MAIL_BACKGROUND"] = False
    clock = ManualClock(START)
    set_clock(world.app, clock)
    assert world.run("backup", "run", "acme").exit_code == 0
    before = owned(world)
    assert world.run("tenants", "close", "acme").exit_code == 0
    targets = world.settings.backup_targets
    world.configure(backup_targets=("relative/folder",))  # a broken configuration
    clock.advance(days=31)
    summary = run_closures(world)
    assert summary.purged == [] and "targets" in " ".join(summary.errors)
    clock.advance(days=30)
    summary = run_closures(world)
    assert summary.overdue == ["acme"] and "not purged by its purge date" in \
        " ".join(summary.errors)
    assert status(world)["purged_at"] is None
    world.configure(backup_targets=targets)  # fixed: the next run finishes the purge
    summary = run_closures(world)
    assert summary.purged == ["acme"] and summary.ok, summary
    assert leftovers(world, before, backend) == []
