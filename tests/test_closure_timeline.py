"""A client leaves, on both backends, with a controllable clock: closure (logins stop, pages
answer 410, maintenance access ends, admins mailed the purge date) → grace period (reopen
works) → drop of the live data → the 30-day backup window → purge of every copy. At the end
nothing of the tenant remains on any target, database server or instance folder, and the
signed deletion record names every item that existed."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta

import pytest
from flask_babel import force_locale

from core import dates
from core.clock import ManualClock, set_clock
from tests.backup_world import TITLE, BackupWorld, make_world
from tests.closure_world import leftovers, owned, record_json, run_closures, status, write
from tests.conftest import make_staff, staff_login

START = datetime(2030, 1, 1, 3, 0, tzinfo=UTC)


def days(n: float) -> timedelta:
    return timedelta(days=n)


@pytest.fixture
def world(make_app, backend, tmp_path, password_hash, smtp_server) -> BackupWorld:
    made = make_world(make_app, backend, tmp_path, password_hash, closure_grace_days=2,
                      **smtp_server.settings())
    made.app.config["MAIL_BACKGROUND"] = False
    return made


def _maintenance(world: BackupWorld) -> tuple[str, str]:
    """A pending request and an active grant (with its own PostgreSQL role)."""
    from core.db import db
    from maintenance.models import StaffUser
    from maintenance.requests import create_request
    from tests.conftest import grant_for_test

    eve = make_staff(world.app)
    with world.app.app_context():
        engineer = db.session.get(StaffUser, eve.id)
        granted = create_request("acme", engineer, "Investigate ticket #42").public_id
        pending = create_request("acme", engineer, "Look at the export").public_id
    grant_for_test(world.app, granted)
    return granted, pending


def _maintenance_state(world: BackupWorld) -> tuple[set[str], set[str], list[str]]:
    from core.db import db
    from maintenance.models import AccessLogEntry, Grant, MaintenanceRequest

    with world.app.app_context():
        requests = {r.status.value for r in db.session.query(MaintenanceRequest)}
        grants = {g.status.value for g in db.session.query(Grant)}
        events = [e.event for e in db.session.query(AccessLogEntry).order_by(AccessLogEntry.seq)]
        return requests, grants, events


def _exports(world: BackupWorld, uid: str) -> set[tuple[str, int]]:
    """A full export by the app (a ``data_exports`` row) and ``tenants export``'s default
    file, in <instance>/exports; their SHA-256 and size."""
    import hashlib

    from core.db import db
    from qalitel.exports.jobs import process_pending_exports, request_export
    from qalitel.users.models import User
    from tests.conftest import in_tenant

    with in_tenant(world.app, "acme") as session:
        admin = session.query(User).filter_by(email="admin@acme.example").one().id
    with world.app.app_context():
        request_export("tenant", uid, admin)
        db.session.commit()
    assert process_pending_exports(world.app)
    assert world.run("tenants", "export", "acme", "--reason", "Ticket 9").exit_code == 0
    files = list((world.settings.instance_dir / "exports").glob("*.zip"))
    assert len(files) == 2 and any(p.name.startswith("acme-export-") for p in files)
    return {(hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_size) for p in files}


def test_closure_grace_drop_window_purge(world, backend, smtp_server, tmp_path):
    clock = ManualClock(START)
    set_clock(world.app, clock)
    for day in (0, 1):
        clock.set(START + days(day))
        assert world.run("backup", "run", "acme").exit_code == 0
    clock.set(START + days(1.5))
    _maintenance(world)
    before = owned(world)
    assert before.files == 3 and len(before.copies) == 4  # two files, the store's .lock
    client = world.app.test_client()
    assert client.get("/t/acme/login").status_code == 200
    exports = world.settings.instance_dir / "exports"

    # Closure on day 1: logins stop at once, maintenance ends, admins are told the date.
    result = world.run("tenants", "close", "acme", "--reason", "contract ended", "--json")
    assert result.exit_code == 0, result.output
    closed = json.loads(result.stdout)
    first_due = (START + days(1.5)).date() + days(2 + 30 + 30)
    assert closed["purge_due_at"] == first_due.isoformat() and not closed["dropped"]
    page = client.get("/t/acme/login")
    assert page.status_code == 410 and b"Acme" in page.data
    assert client.get("/t/acme/").status_code == 410
    requests, grants, events = _maintenance_state(world)
    assert requests == {"approved", "expired"} and grants == {"revoked"}
    assert events[-3:] == ["request_expired", "revocation", "export"]  # then its export
    mail = smtp_server.wait_for(3)[-1]  # after the two maintenance requests' messages
    assert "fermé" in mail.message["Subject"]  # the platform default: French
    assert mail.rcpt_tos == ["admin@acme.example"]
    with world.app.test_request_context("/"), force_locale("fr"):
        due_text = dates.date_text(first_due)  # "5 mars 2030": dates in the admin's language
    assert due_text in mail.body and "/closure-export/" in mail.body
    assert len(list(exports.glob("closure-*.zip"))) == 1
    if backend == "postgresql":
        assert "role" in " ".join(leftovers(world, before, backend))  # own role still there
        from tenants import pg
        from tests.conftest import PG_URL

        with pg.admin_connection(PG_URL) as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_roles WHERE rolname = ANY(%s)",
                        (before.grant_roles,))
            assert cur.fetchone()[0] == 0  # grant roles dropped at closure

    # Grace period: reopen works, and closing again gives a new purge date.
    clock.set(START + days(2))
    assert world.run("tenants", "reopen", "acme").exit_code == 0
    assert status(world)["status"] == "active"
    assert list(exports.glob("*")) == []  # the closure's export withdrawn
    assert client.get("/t/acme/login").status_code == 200
    made = _exports(world, before.uid)  # an app export and an operator's, both left there
    assert world.run("tenants", "close", "acme", "--reason", "Acme bankrupt").exit_code == 0
    due = (START + days(2)).date() + days(62)
    assert status(world)["purge_due_at"] == due
    summary = run_closures(world)
    assert summary.dropped == [] and summary.ok, summary

    # Drop, once the grace period is over: database, role, files go; the row stays.
    clock.set(START + days(4, ) + timedelta(minutes=1))
    summary = run_closures(world)
    assert summary.dropped == ["acme"] and summary.purged == [] and summary.ok, summary
    assert status(world)["dropped_at"] is not None
    assert [p.name[:8] for p in exports.iterdir()] == ["closure-"]  # the others are gone
    assert client.get("/t/acme/login").status_code == 410
    refused = world.run("tenants", "reopen", "acme")
    assert refused.exit_code == 2 and "dropped" in refused.output
    assert status(world)["status"] == "closed"
    assert all(key.split("/")[0] == before.uid for key, *_ in before.copies)
    assert len(world.archives(world.media[0])) == 2  # backups stay until their window ends

    # The window: each copy goes as soon as its own window has ended.
    clock.set(START + days(30) + timedelta(hours=1))
    summary = run_closures(world)
    assert summary.copies_deleted == 2 and summary.purged == [] and summary.ok, summary
    clock.set(START + days(31) + timedelta(hours=1))
    summary = run_closures(world)
    assert summary.copies_deleted == 2 and summary.purged == ["acme"], summary
    assert run_closures(world).as_dict()["purged"] == []  # idempotent
    assert status(world)["purged_at"] is not None and status(world)["reason"] is None

    # Nothing left anywhere (inside ZIPs, platform rows too); the record names every item.
    assert leftovers(world, before, backend, reason="Acme bankrupt") == []
    record = record_json(world)["record"]
    assert record["status"] == "purged" and record["purge_due_at"] == due.isoformat()
    kinds = [i["kind"] for i in record["items"]]
    assert {(i["name"], i["place"], i["sha256"]) for i in record["items"]
            if i["kind"] == "backup-copy"} == before.copies
    [database] = [i for i in record["items"] if i["kind"] == "database"]
    assert before.database in database["name"]
    [files] = [i for i in record["items"] if i["kind"] == "files"]
    assert files["count"] == before.files and before.uid in files["name"]
    assert kinds.count("target-folder") == 2 and "access-log" in kinds
    assert kinds.count("export") == 3 and list(exports.glob("*")) == []
    assert {(i["sha256"], i["size"]) for i in record["items"] if i["kind"] == "export"
            and not i["name"].startswith("closure")} == made
    if backend == "postgresql":
        assert [i["name"] for i in record["items"] if i["kind"] == "role"] == [before.role]
        granted = [i for i in record["items"] if i["kind"] == "grant-role"]
        assert sorted(i["name"] for i in granted) == sorted(before.grant_roles)
        # recorded when dropped (at the first closure), not at the drop
        assert {i["removed_at"] for i in granted} == {(START + days(1.5)).isoformat()}
    for timestamp in ("closed_at", "dropped_at", "last_backup_expired_at", "purged_at"):
        assert record[timestamp] is not None
    dumped = json.dumps(record)
    for private in (TITLE, "admin@acme.example", "Admin acme", "User acme", "contract ended"):
        assert private not in dumped

    # The signed text checks, a tampered one does not.
    text = world.run("tenants", "deletion-record", "acme")
    assert text.exit_code == 0 and "-----BEGIN QALITEL SIGNATURE-----" in text.stdout
    good = write(tmp_path / "record.txt", text.stdout)
    checked = world.run("tenants", "deletion-record", "--verify", str(good))
    assert checked.exit_code == 0, checked.output
    bad = write(tmp_path / "tampered.txt", text.stdout.replace(f"{before.files} files", "0 files"))
    assert bad.read_text() != text.stdout
    checked = world.run("tenants", "deletion-record", "--verify", str(bad))
    assert checked.exit_code == 1 and "does not match" in checked.output

    # The staff console lists the closure with its timeline.
    staff = world.app.test_client()
    assert staff_login(staff, world.app, make_staff(world.app, "sam@scoqi.example"))\
        .status_code == 302
    page = staff.get("/staff/closures")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "acme" in html and due.isoformat() in html and html.count("2030-0") >= 5


def _readme_recipe() -> str:
    """The shell lines of the README's check without the app, joined with ``&&``."""
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    start = readme.index("```sh\nsed '/^-----BEGIN QALITEL SIGNATURE-----$/,$d'")
    block = readme[start + 6:readme.index("```", start + 6)]
    return " && ".join(line for line in block.replace("\\\n", "").splitlines() if line)


def test_the_signature_checks_by_hand_with_openssl(world, tmp_path):
    """What the README (and the docstring of qalitel.closure.record) tells a client to run:
    it refuses an altered text, and text added after the signature block."""
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to check the README's verification steps")
    assert world.run("tenants", "close", "acme").exit_code == 0
    text = world.run("tenants", "deletion-record", "acme").stdout
    pem = world.run("tenants", "deletion-record", "--public-key").stdout
    write(tmp_path / "qalitel-signing.pem", pem)
    script = _readme_recipe()

    def check(record: str) -> subprocess.CompletedProcess:
        write(tmp_path / "record.txt", record)
        return subprocess.run(["sh", "-c", script], cwd=tmp_path, capture_output=True,
                              text=True, check=False)

    done = check(text)
    assert done.returncode == 0 and "Signature Verified Successfully" in done.stdout, done
    assert check(text.replace("in progress", "purged")).returncode != 0
    assert check(text + "Addendum: one copy kept for 5 more years.\n").returncode != 0
    assert check(text + text).returncode != 0
