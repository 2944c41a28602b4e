"""One medium down, on both backends: the ``backups`` job counts a partial backup as backed
up (one archive, not one per call), the next daily run copies the missing archive once the
medium is back, ``backup status`` still flags a tenant without a complete backup for 26
hours, and prune keeps a live tenant's newest backup with a good copy when all are partial."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from core.clock import ManualClock, set_clock
from tests.backup_world import BackupWorld, make_world

START = datetime(2030, 1, 1, 3, 0, tzinfo=UTC)


@pytest.fixture
def world(make_app, backend, tmp_path, password_hash) -> BackupWorld:
    """Two media; the second is not mounted (its folder is missing)."""
    first = tmp_path / "media-a"
    first.mkdir()
    return make_world(make_app, backend, tmp_path, password_hash,
                      media=[first, tmp_path / "media-b"])


def _run_due(world: BackupWorld) -> dict:
    result = world.run("jobs", "run-due", "--json")
    assert result.exit_code in (0, 1), result.output
    return {j["job"]: j for j in json.loads(result.stdout)["jobs"]}


def test_a_medium_down_makes_one_archive_not_one_per_call(world):
    clock = ManualClock(START)
    set_clock(world.app, clock)
    outcomes = []
    for _ in range(12):  # an hour of cron calls, every 5 minutes
        outcomes.append(_run_due(world)["backups"]["outcome"])
        clock.advance(minutes=5)
    assert [b["status"] for b in world.catalogue()] == ["partial"]
    assert len(world.archives(world.media[0])) == 1
    # still reported as failed, retried after 5, 10, 20 minutes… without a new archive
    assert outcomes == ["failed", "failed", "not-due", "failed", "not-due", "not-due",
                        "not-due", "failed", "not-due", "not-due", "not-due", "not-due"]
    result = world.run("jobs", "status")
    assert "acme: its newest backup (0.58 h old) is partial; its next daily run copies " \
        "it to the targets it misses" in result.output

    world.media[1].mkdir()  # the medium is back
    clock.set(START + timedelta(hours=23))
    assert _run_due(world)["backups"]["outcome"] == "ok"
    assert [b["status"] for b in world.catalogue()] == ["complete", "complete"]
    assert len(world.archives(world.media[1])) == 2  # the first one copied there too


def test_status_flags_a_tenant_whose_copies_are_incomplete_for_26_hours(world):
    clock = ManualClock(START)
    set_clock(world.app, clock)
    world.media[1].mkdir()
    assert world.run("backup", "run", "acme").exit_code == 0  # complete, on both media
    world.media[1].rename(world.tmp / "media-b-away")  # then medium b goes
    clock.set(START + timedelta(hours=23))
    assert _run_due(world)["backups"]["outcome"] == "failed"
    assert [b["status"] for b in world.catalogue()] == ["complete", "partial"]
    clock.advance(hours=1)
    assert _run_due(world)["backups"]["outcome"] == "failed"  # partial counts: no new archive
    assert len(world.catalogue()) == 2

    clock.set(START + timedelta(hours=26))
    assert world.run("backup", "status").exit_code == 0
    clock.advance(minutes=1)
    result = world.run("backup", "status")
    assert result.exit_code == 1 and "acme: no complete backup for 26 hours" in result.output
    [acme] = world.json("backup", "status")["tenants"]
    assert acme["overdue"] is True and acme["last_status"] == "partial"
    assert acme["age_hours"] == 26.02 and acme["backed_up_hours"] == 3.02
    assert acme["failures"] == 1


def test_prune_keeps_the_newest_partial_backup_of_a_live_tenant(world):
    clock = ManualClock(START)
    set_clock(world.app, clock)
    for day in (0, 10, 20):
        clock.set(START + timedelta(days=day))
        assert world.run("backup", "run", "acme").exit_code == 1  # partial
    clock.set(START + timedelta(days=60))  # then the tenant's backups stop
    report = world.json("backup", "prune")
    assert [p["backup_id"] for p in report["pruned"]] == [1, 2]
    assert [b["status"] for b in world.catalogue()] == ["pruned", "pruned", "partial"]
    assert len(world.archives(world.media[0])) == 1
    assert world.json("backup", "prune")["pruned"] == []


def test_a_copy_found_altered_does_not_protect_its_backup(world):
    clock = ManualClock(START)
    set_clock(world.app, clock)
    for day in (0, 10):
        clock.set(START + timedelta(days=day))
        assert world.run("backup", "run", "acme").exit_code == 1
    newest = world.archives(world.media[0])[-1]
    newest.write_bytes(b"altered")
    assert world.run("backup", "verify", "acme").exit_code == 1
    clock.set(START + timedelta(days=60))
    report = world.json("backup", "prune")
    assert [p["backup_id"] for p in report["pruned"]] == [2]  # the intact older one stays
    assert [b["status"] for b in world.catalogue()] == ["partial", "pruned"]
