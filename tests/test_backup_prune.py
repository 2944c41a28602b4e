"""``qalitel backup prune`` with a controllable clock, on both backends: exactly the copies
past the window go, from every target, recorded in the catalogue; a live tenant's newest
good backup stays whatever its age; a closed tenant keeps nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from core.clock import ManualClock, set_clock
from tests.backup_world import BackupWorld, make_world, mount_tmpfs, unmount

START = datetime(2030, 1, 1, 3, 0, tzinfo=UTC)


@pytest.fixture
def world(make_app, backend, tmp_path, password_hash) -> BackupWorld:
    return make_world(make_app, backend, tmp_path, password_hash)


def _names(world: BackupWorld) -> list[list[str]]:
    return [sorted(p.name for p in world.archives(m)) for m in world.media]


def _backups_on(world: BackupWorld, clock: ManualClock, days: list[int]) -> list[str]:
    """One backup at each of ``days`` after START; returns their archive names."""
    for day in days:
        clock.set(START + _days(day))
        assert world.run("backup", "run", "acme").exit_code == 0
    return [b["key"].rsplit("/", 1)[1] for b in world.catalogue()]


def _days(n: int):
    from datetime import timedelta

    return timedelta(days=n)


def test_the_clock_moved_31_days_prunes_exactly_what_is_due(world):
    clock = ManualClock(START)
    set_clock(world.app, clock)
    names = _backups_on(world, clock, [0, 10, 20])
    assert _names(world) == [sorted(names)] * 2

    clock.set(START + _days(30))  # day 0 is exactly 30 days old: not yet due
    result = world.run("backup", "prune")
    assert result.exit_code == 0 and "nothing to prune" in result.output
    assert _names(world) == [sorted(names)] * 2

    clock.set(START + _days(31))
    report = world.json("backup", "prune")
    assert [p["backup_id"] for p in report["pruned"]] == [1]
    assert _names(world) == [sorted(names[1:])] * 2
    first, *rest = world.catalogue()
    assert first["status"] == "pruned"
    assert {state for state, _ in first["copies"].values()} == {"pruned"}
    assert [b["status"] for b in rest] == ["complete", "complete"]
    assert world.run("backup", "verify", "acme").exit_code == 0  # pruned ones not checked
    refused = world.run("backup", "restore", "acme", "1")
    assert refused.exit_code == 2 and "backup 1 of 'acme' is pruned" in refused.output

    clock.set(START + _days(400))  # every backup is old; the newest good one stays
    report = world.json("backup", "prune")
    assert [p["backup_id"] for p in report["pruned"]] == [2]
    assert _names(world) == [[names[2]]] * 2
    assert world.json("backup", "prune")["pruned"] == []  # idempotent


def test_a_closed_tenants_copies_are_left_to_its_closure_purge(world):
    """Not pruned here, though past the window: the closure's purge deletes them and names
    each in the deletion record (tests/test_closure_*.py)."""
    from core.db import db
    from tenants.registry import Tenant, TenantStatus

    clock = ManualClock(START)
    set_clock(world.app, clock)
    _backups_on(world, clock, [0])
    with world.app.app_context():
        db.session.query(Tenant).filter_by(slug="acme").one().status = TenantStatus.CLOSED
        db.session.commit()
    clock.set(START + _days(31))
    kept = _names(world)
    assert world.json("backup", "prune")["pruned"] == []
    assert _names(world) == kept and all(kept)


def test_a_copy_that_cannot_be_deleted_is_named_and_retried(world):
    """The copy on the second target is replaced by a folder of the same name (``unlink``
    fails there, for root too): prune names it, exits 1, keeps the backup unpruned, and the
    next prune finishes it."""
    clock = ManualClock(START)
    set_clock(world.app, clock)
    _backups_on(world, clock, [0, 1])
    [stuck, _newest] = world.archives(world.media[1])
    stuck.unlink()
    stuck.mkdir()
    (stuck / "x").write_text("x")
    clock.set(START + _days(40))
    result = world.run("backup", "prune")
    assert result.exit_code == 1
    assert f"acme: backup 1: {world.media[1]}: " in result.output
    first = world.catalogue()[0]
    assert first["status"] == "pruning"  # not pruned until every copy is gone
    assert first["copies"][str(world.media[0])] == ("pruned", None)
    state, error = first["copies"][str(world.media[1])]
    assert state == "ok" and error.startswith(f"not deleted: {world.media[1]}: ")
    assert first["error"].startswith(f"prune: {world.media[1]}: ")
    refused = world.run("backup", "restore", "acme", "1")
    assert refused.exit_code == 2 and "backup 1 of 'acme' is pruning" in refused.output

    import shutil

    shutil.rmtree(stuck)
    result = world.run("backup", "prune")
    assert result.exit_code == 0, result.output
    first = world.catalogue()[0]
    assert first["status"] == "pruned"
    assert set(first["copies"].values()) == {("pruned", None)}
    assert [len(world.archives(m)) for m in world.media] == [1, 1]


def test_a_prune_failing_on_a_read_only_target_says_what_was_deleted(make_app, backend,
                                                                     tmp_path, password_hash):
    """The second medium is a real tmpfs remounted read-only after the backups: the copy on
    the first medium is deleted and recorded so, the other stays catalogued as present with
    the error, the run exits 1 naming it, and once the medium is writable again the next
    prune deletes exactly that copy."""
    import subprocess

    first_medium, second_medium = tmp_path / "media-a", tmp_path / "media-b"
    first_medium.mkdir()
    assert mount_tmpfs(second_medium, "size=4m"), "mounting a tmpfs needs root"
    try:
        world = make_world(make_app, backend, tmp_path, password_hash,
                           media=[first_medium, second_medium])
        clock = ManualClock(START)
        set_clock(world.app, clock)
        names = _backups_on(world, clock, [0, 1])
        subprocess.run(["mount", "-o", "remount,ro", str(second_medium)], check=True)
        clock.set(START + _days(40))
        result = world.run("backup", "prune", "--json")
        assert result.exit_code == 1
        assert f"acme: backup 1: {second_medium}: Read-only file system" in result.output
        report = json.loads(result.stdout)["pruned"]
        assert [(r["backup_id"], r["deleted"]) for r in report] == [(1, [str(first_medium)])]
        first, second = world.catalogue()
        assert first["status"] == "pruning" and second["status"] == "complete"
        assert first["copies"][str(first_medium)] == ("pruned", None)
        state, error = first["copies"][str(second_medium)]
        assert state == "ok" and "Read-only file system" in error
        assert _names(world) == [[names[1]], sorted(names)]
        assert world.run("backup", "verify", "acme").exit_code == 0  # the pruning one skipped

        subprocess.run(["mount", "-o", "remount,rw", str(second_medium)], check=True)
        report = world.json("backup", "prune")["pruned"]
        assert [(r["backup_id"], r["deleted"], r["failures"]) for r in report] == [
            (1, [str(second_medium)], [])]
        first, second = world.catalogue()
        assert first["status"] == "pruned" and second["status"] == "complete"
        assert set(first["copies"].values()) == {("pruned", None)}
        assert _names(world) == [[names[1]]] * 2
        assert world.json("backup", "prune")["pruned"] == []
    finally:
        unmount(second_medium)


def test_status_reports_overdue_tenants(world):
    clock = ManualClock(START)
    set_clock(world.app, clock)
    result = world.run("backup", "status")
    assert result.exit_code == 1 and "acme: no good backup — OVERDUE" in result.output
    _backups_on(world, clock, [0])
    clock.set(START + _days(1))
    report = world.json("backup", "status")
    [acme] = report["tenants"]
    assert acme["age_hours"] == 24.0 and acme["overdue"] is False
    assert acme["last_status"] == "complete"
    clock.set(START + _days(1) + (_days(1) / 12))  # 26 h: not yet
    assert world.run("backup", "status").exit_code == 0
    clock.advance(minutes=1)
    result = world.run("backup", "status")
    assert result.exit_code == 1 and "acme: no complete backup for 26 hours" in result.output
