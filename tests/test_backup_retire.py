"""``qalitel backup retire-target NAME`` on both backends: a medium replaced for good stops
making prune fail; a complete backup that had a copy there becomes partial and the next run
copies it to the new medium; bad input exits 2 and changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.clock import ManualClock, set_clock
from tests.backup_world import BackupWorld, make_world

START = datetime(2030, 1, 1, 3, 0, tzinfo=UTC)


@pytest.fixture
def world(make_app, backend, tmp_path, password_hash) -> BackupWorld:
    return make_world(make_app, backend, tmp_path, password_hash)


def _replace_second_medium(world: BackupWorld) -> str:
    """Medium b died; a new disk, media-c, replaces it in the configuration."""
    new = world.tmp / "media-c"
    new.mkdir()
    world.configure(backup_targets=(str(world.media[0]), str(new)))
    return str(world.media[1])


def _copies(world: BackupWorld, target: str) -> list[tuple[str, str | None]]:
    return [b["copies"].get(target, ("absent", None)) for b in world.catalogue()]


def test_a_retired_target_lets_prune_complete(world):
    clock = ManualClock(START)
    set_clock(world.app, clock)
    for day in (0, 10):
        clock.set(START + timedelta(days=day))
        assert world.run("backup", "run", "acme").exit_code == 0
    old = str(world.media[1])
    refused = world.run("backup", "retire-target", old)
    assert refused.exit_code == 2
    assert f"{old} is still in QALITEL_BACKUP_TARGETS: take it out first" in refused.output
    _replace_second_medium(world)
    clock.set(START + timedelta(days=41))
    failed = world.run("backup", "prune")
    assert failed.exit_code == 1
    assert f"target no longer configured (gone for good? `qalitel backup retire-target {old}`)" \
        in failed.output
    assert [b["status"] for b in world.catalogue()] == ["pruning", "complete"]

    retired = world.json("backup", "retire-target", old + "/")  # as the variable wrote it
    assert retired == {"target": old, "copies": [1, 2], "partial": [2], "failed": []}
    assert _copies(world, old) == [("pruned", "retired target: no longer configured, its "
                                              "copies counted as gone")] * 2
    text = world.run("backup", "retire-target", old)
    assert text.exit_code == 0 and f"{old}: 0 copies counted as gone" in text.output
    for day in (42, 100):
        clock.set(START + timedelta(days=day))
        assert world.run("backup", "prune").exit_code == 0
    statuses = [b["status"] for b in world.catalogue()]
    assert statuses[0] == "pruned" and statuses[1] == "partial"  # the newest with a copy
    assert world.archives(world.media[1])  # nothing deleted on the retired medium itself


def test_a_backup_within_the_window_is_copied_to_the_new_medium(world):
    clock = ManualClock(START)
    set_clock(world.app, clock)
    assert world.run("backup", "run", "acme").exit_code == 0
    old = _replace_second_medium(world)
    clock.advance(days=1)
    assert world.json("backup", "retire-target", old)["partial"] == [1]
    result = world.run("backup", "run", "acme")
    assert result.exit_code == 0, result.output
    assert f"completed copy of backup 1 → {world.tmp / 'media-c'}" in result.output
    assert [b["status"] for b in world.catalogue()] == ["complete", "complete"]
    assert len(world.archives(world.tmp / "media-c")) == 2


def test_a_backup_whose_last_good_copy_was_there_is_failed(make_app, backend, tmp_path,
                                                           password_hash):
    first, second = tmp_path / "media-a", tmp_path / "media-b"
    second.mkdir()  # medium a is not mounted during the backup
    world = make_world(make_app, backend, tmp_path, password_hash, media=[first, second])
    assert world.run("backup", "run", "acme").exit_code == 1
    first.mkdir()
    new = tmp_path / "media-c"
    new.mkdir()
    world.configure(backup_targets=(str(first), str(new)))
    assert world.json("backup", "retire-target", str(second))["failed"] == [1]
    [backup] = world.catalogue()
    assert backup["status"] == "failed" and "last good copy was on a retired target" in \
        backup["error"]
    refused = world.run("backup", "restore", "acme", "1")
    assert refused.exit_code == 2 and "is failed: nothing to restore" in refused.output


@pytest.mark.parametrize("name, message", [
    ("media-b", "give the folder (absolute path) or s3:// target"),
    ("/nowhere/at/all", "the backup catalogue has no copy on /nowhere/at/all"),
    ("s3://", "is not s3://bucket/prefix"),
    ("/media/\x07b", "is not a target name"),
    ("ftp://host/b", "give the folder (absolute path) or s3:// target"),
    ("", "is not a target name"),
])
def test_bad_names_are_refused_and_change_nothing(world, name, message):
    assert world.run("backup", "run", "acme").exit_code == 0
    before = world.catalogue()
    result = world.run("backup", "retire-target", name)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert world.catalogue() == before
