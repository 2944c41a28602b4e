"""Closure, the holes a hostile review found, on both backends: a deletion record with text
after its signature (or a second block, or another key's fingerprint) fails ``--verify``; a
suspended tenant reopens suspended; a reopen after the grace period is refused even before
the job drops the tenant; every export of the tenant in <instance>/exports (the app's and
``tenants export``'s default file) goes at the drop, or at the purge when made after it, and
is named in the deletion record."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from core.clock import EXTENSION, ManualClock, set_clock
from tests.backup_world import BackupWorld, make_world
from tests.closure_world import leftovers, owned, record_json, run_closures, status, write

START = datetime(2030, 6, 1, 3, 0, tzinfo=UTC)


@pytest.fixture
def world(make_app, backend, tmp_path, password_hash) -> BackupWorld:
    made = make_world(make_app, backend, tmp_path, password_hash, closure_grace_days=2,
                      backup_retention_days=0)
    made.app.config["MAIL_BACKGROUND"] = False
    set_clock(made.app, ManualClock(START))
    return made


def _clock(world: BackupWorld) -> ManualClock:
    return world.app.extensions[EXTENSION]


def _verify(world: BackupWorld, tmp_path, text: str):
    return world.run("tenants", "deletion-record", "--verify",
                     str(write(tmp_path / "record.txt", text)))


def test_verify_accepts_only_one_block_ending_the_record(world, tmp_path):
    assert world.run("tenants", "close", "acme").exit_code == 0
    text = world.run("tenants", "deletion-record", "acme").stdout
    assert _verify(world, tmp_path, text).exit_code == 0
    assert _verify(world, tmp_path, text + "\n  \n").exit_code == 0  # whitespace only
    fingerprint = text.split("public-key-sha256: ")[1].split("\n")[0]
    for forged, message in [
        (text + "Addendum: SCOQI kept one backup copy for 5 more years.\n",
         "with nothing after it"),
        (text + text, "more than one signature block"),
        (text.replace(fingerprint, "0" * 64), "fingerprint is not this platform's"),
        (text.replace(f"public-key-sha256: {fingerprint}\n", ""), "with nothing after it"),
    ]:
        checked = _verify(world, tmp_path, forged)
        assert checked.exit_code == 1 and message in checked.output, checked.output


def test_a_suspended_tenant_reopens_suspended(world):
    assert world.run("tenants", "suspend", "acme").exit_code == 0
    assert world.run("tenants", "close", "acme").exit_code == 0
    assert world.run("tenants", "reopen", "acme").exit_code == 0
    assert status(world)["status"] == "suspended"
    assert world.run("tenants", "resume", "acme").exit_code == 0
    assert world.run("tenants", "close", "acme").exit_code == 0
    assert world.run("tenants", "reopen", "acme").exit_code == 0
    assert status(world)["status"] == "active"


def test_no_reopen_once_the_grace_period_is_over_even_before_the_drop(world):
    assert world.run("tenants", "close", "acme").exit_code == 0
    _clock(world).advance(timedelta(days=2))  # grace over to the second; the job has not run
    refused = world.run("tenants", "reopen", "acme")
    assert refused.exit_code == 2, refused.output
    assert "grace period ended" in refused.output and "--as NEWSLUG" in refused.output
    assert status(world)["status"] == "closed" and status(world)["dropped_at"] is None
    assert run_closures(world).dropped == ["acme"]


def _sha(path) -> tuple[str, int]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_size


def test_every_export_of_the_tenant_goes_and_is_recorded(make_app, backend, tmp_path,
                                                        password_hash):
    from core.db import db
    from qalitel.exports.jobs import process_pending_exports, request_export

    world = make_world(make_app, backend, tmp_path, password_hash, closure_grace_days=2,
                       backup_retention_days=5)
    world.app.config["MAIL_BACKGROUND"] = False
    clock = ManualClock(START)
    set_clock(world.app, clock)
    assert world.run("backup", "run", "acme").exit_code == 0  # kept until day 5
    exports = world.settings.instance_dir / "exports"
    before = owned(world)
    with world.app.app_context():
        request_export("tenant", before.uid, 1)
        db.session.commit()
    assert process_pending_exports(world.app)
    clock.advance(minutes=1)  # another manifest time: another file
    assert world.run("tenants", "export", "acme", "--reason", "Ticket 9").exit_code == 0
    kept = exports / "acmeish-export-20300601-030000.zip"  # another name: not the tenant's
    kept.write_bytes(b"not acme's")
    made = sorted(_sha(p) for p in exports.glob("*.zip") if p != kept)
    assert len(made) == 2
    assert world.run("tenants", "close", "acme", "--reason", "Acme bankrupt").exit_code == 0
    clock.advance(timedelta(days=3))
    summary = run_closures(world)
    assert summary.dropped == ["acme"] and summary.purged == [], summary
    left = sorted(p.name for p in exports.iterdir())
    assert len(left) == 2 and left[0] == kept.name and left[1].startswith("closure-")
    items = [i for i in record_json(world)["record"]["items"] if i["kind"] == "export"]
    assert sorted((i["sha256"], i["size"]) for i in items) == made
    assert {i["place"] for i in items} == {"platform export folder"}
    late = exports / "acme-export-20300605-030000.zip"  # finished after the drop
    late.write_bytes(b"a late export")
    clock.advance(timedelta(days=3))
    summary = run_closures(world)
    assert summary.purged == ["acme"], summary
    assert sorted(p.name for p in exports.iterdir()) == [kept.name]
    items = [i for i in record_json(world)["record"]["items"] if i["kind"] == "export"]
    assert late.name in {i["name"] for i in items} and len(items) == 4  # + the closure's
    kept.unlink()
    assert leftovers(world, before, backend, reason="Acme bankrupt") == []
    assert status(world)["reason"] is None
