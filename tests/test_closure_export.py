"""The closure's export link, on both backends: at closure (before the drop) the tenant's full
export is built and each admin is mailed one link for the company, at
``/closure-export/<token>`` outside the tenant; it downloads a ZIP that ``tenants import --as``
accepts while the tenant is closed and dropped; after the purge, or past the purge date, it
answers 410 and the file is gone, named in the deletion record; a forged token gets 404;
attempts are throttled per address; the link never comes from the request's Host."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
from flask_babel import force_locale
from sqlalchemy import select

from core import dates
from core.clock import ManualClock, set_clock
from tests.backup_world import TITLE, BackupWorld, make_world
from tests.closure_world import record_json, run_closures, status
from tests.conftest import in_tenant
from tests.fixtures.mail import link_in

START = datetime(2030, 3, 1, 9, 0, tzinfo=UTC)
EXTERNAL = "https://qalitel.example.com"


@pytest.fixture
def world(make_app, backend, tmp_path, password_hash, smtp_server) -> BackupWorld:
    made = make_world(make_app, backend, tmp_path, password_hash, backup_retention_days=0,
                      external_url=EXTERNAL, **smtp_server.settings())
    made.app.config["MAIL_BACKGROUND"] = False
    return made


def _exports(world: BackupWorld) -> list[Path]:
    return sorted((world.settings.instance_dir / "exports").glob("*"))


def _close(world: BackupWorld, smtp_server, *args: str) -> str:
    result = world.run("tenants", "close", "acme", *args)
    assert result.exit_code == 0, result.output
    mail = smtp_server.wait_for(1)[-1]
    assert mail.rcpt_tos == ["admin@acme.example"]
    link = link_in(mail)
    assert link.startswith(f"{EXTERNAL}/closure-export/")
    return link


def _path(link: str) -> str:
    """The link as the test client asks it (its Host is the configured one: trusted)."""
    assert link.startswith(EXTERNAL)
    return link


def test_the_closure_mail_links_to_an_export_that_imports(world, backend, smtp_server,
                                                          tmp_path):
    clock = ManualClock(START)
    set_clock(world.app, clock)
    link = _close(world, smtp_server)
    assert status(world)["dropped_at"] is not None  # grace 0: dropped inside close
    mail = smtp_server.wait_for(1)[-1]
    due = status(world)["purge_due_at"]
    with world.app.test_request_context("/"), force_locale("fr"):  # the admin's, Paris time
        until = dates.datetime_text(datetime.combine(due, time(), UTC), tz=dates.default_zone())
    assert f"jusqu’au {until} au plus tard" in mail.body  # valid until the purge date
    client = world.app.test_client()
    assert client.get(f"{EXTERNAL}/t/acme/login").status_code == 410  # the tenant is gone...
    answer = client.get(_path(link))  # ...its export is not, until the purge
    assert answer.status_code == 200, answer.data[:300]
    assert answer.mimetype == "application/zip"
    assert answer.headers["Content-Disposition"].startswith("attachment;")
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Cache-Control"] == "no-store"
    archive = tmp_path / "closure.zip"
    archive.write_bytes(answer.data)

    result = world.run("tenants", "import", str(archive), "--as", "acme-back")
    assert result.exit_code == 0, result.output
    from qalitel.records.models import NonConformity

    with in_tenant(world.app, "acme-back") as session:
        assert TITLE in {r.title for r in session.query(NonConformity)}

    # The purge (one jobs run-due: no grace, no retention) deletes it and names it.
    clock.advance(minutes=1)
    summary = run_closures(world)
    assert summary.purged == ["acme"], summary
    assert _exports(world) == []
    gone = client.get(_path(link), headers={"Accept-Language": "en"})
    assert gone.status_code == 410 and b"no longer available" in gone.data
    [item] = [i for i in record_json(world)["record"]["items"] if i["kind"] == "export"]
    assert item["sha256"] == hashlib.sha256(answer.data).hexdigest()
    assert item["size"] == len(answer.data)
    text = world.run("tenants", "deletion-record", "acme").stdout
    assert "export file: closure export" in text


def test_the_link_ends_at_the_purge_date_and_a_forged_token_is_404(
        make_app, backend, tmp_path, password_hash, smtp_server):
    world = make_world(make_app, backend, tmp_path, password_hash, backup_retention_days=0,
                       closure_grace_days=3, external_url=EXTERNAL, **smtp_server.settings())
    world.app.config["MAIL_BACKGROUND"] = False
    clock = ManualClock(START)
    set_clock(world.app, clock)
    link = _close(world, smtp_server, "--reason", "contract ended")
    client = world.app.test_client()
    token = _path(link).rsplit("/", 1)[1]
    for forged in (token[:-2] + ("AA" if token[-2:] != "AA" else "BB"), "x" * 43, "short",
                   token + "x"):
        assert client.get(f"{EXTERNAL}/closure-export/{forged}").status_code == 404, forged
    answer = client.get(_path(link))
    assert answer.status_code == 200

    # Its building was logged in the tenant's access log (kept until the drop).
    from core.db import db
    from maintenance.models import AccessLogEntry

    with world.app.app_context():
        [entry] = db.session.execute(select(AccessLogEntry).where(
            AccessLogEntry.event == "export")).scalars().all()
        assert entry.actor_kind == "system" and entry.detail["purpose"] == "closure"
        assert entry.detail["sha256"] == hashlib.sha256(answer.data).hexdigest()

    due = status(world)["purge_due_at"]
    clock.set(datetime.combine(due, datetime.min.time(), tzinfo=UTC) - timedelta(seconds=1))
    assert client.get(_path(link)).status_code == 200
    clock.advance(seconds=1)
    late = client.get(_path(link))
    assert late.status_code == 410 and "n’est plus disponible" in late.get_data(as_text=True)
    from qalitel.exports.jobs import expire_exports

    assert expire_exports(world.app) == 1
    assert _exports(world) == []
    assert client.get(_path(link)).status_code == 410


def test_each_admin_gets_the_link_and_a_reopen_withdraws_the_export(
        make_app, backend, tmp_path, password_hash, smtp_server):
    world = make_world(make_app, backend, tmp_path, password_hash, closure_grace_days=2,
                       external_url=EXTERNAL, **smtp_server.settings())
    world.app.config["MAIL_BACKGROUND"] = False
    from qalitel.users.models import Profile, User

    with in_tenant(world.app, "acme") as session:
        session.add(User(email="other@acme.example", name="Other admin",
                         password_hash=password_hash, profile=Profile.ADMIN))
        session.commit()
    assert world.run("tenants", "close", "acme").exit_code == 0
    mails = {m.rcpt_tos[0]: link_in(m) for m in smtp_server.wait_for(2)}
    assert set(mails) == {"admin@acme.example", "other@acme.example"}
    [link] = set(mails.values())  # one link for the company, sent to each admin
    assert len(_exports(world)) == 1
    assert world.run("tenants", "reopen", "acme").exit_code == 0
    assert _exports(world) == []
    assert world.app.test_client().get(_path(link)).status_code == 410


def test_downloads_are_throttled_per_address(world, smtp_server):
    world.app.config["CLOSURE_EXPORT_LIMIT_PER_ADDRESS"] = "3 per hour"
    link = _close(world, smtp_server)
    client = world.app.test_client()
    here = {"REMOTE_ADDR": "203.0.113.7"}
    for forged in ("y" * 43, "z" * 43):
        answer = client.get(f"{EXTERNAL}/closure-export/{forged}", environ_base=here)
        assert answer.status_code == 404
    assert client.get(_path(link), environ_base=here).status_code == 200
    refused = client.get(_path(link), environ_base=here)
    assert refused.status_code == 429 and refused.headers["Retry-After"]
    other = {"REMOTE_ADDR": "203.0.113.8"}
    assert client.get(_path(link), environ_base=other).status_code == 200


def test_the_link_is_built_from_configuration_not_the_request_host(world):
    from core.db import db
    from qalitel.exports.closure import build_closure_export
    from tenants.registry import Tenant

    with world.app.test_request_context("/", base_url="http://evil.example"):
        tenant = db.session.execute(select(Tenant).where(Tenant.slug == "acme")).scalar_one()
        link = build_closure_export(tenant)
    assert link is not None and link.startswith(f"{EXTERNAL}/closure-export/")
    assert "evil" not in link
