"""Faults while backing up, on both backends: a target missing, read-only or full; the
process dying between targets; ``pg_dump`` killed midway. The other targets still get their
copy, the failure is in the catalogue and the output, nothing half-written stays anywhere,
and a later run completes the missing copies."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.backup_world import BackupWorld, make_world, mount_tmpfs, unmount


def _world(make_app, backend, tmp_path, password_hash, third: Path, **overrides):
    media = [tmp_path / "media-a", tmp_path / "media-b"]
    for folder in media:
        folder.mkdir()
    return make_world(make_app, backend, tmp_path, password_hash, media=[*media, third],
                      **overrides)


def _assert_partial(world: BackupWorld, result, broken: Path, why: str) -> None:
    assert result.exit_code == 1, result.output
    assert f"acme: {broken}: " in result.output and why in result.output
    [backup] = world.catalogue()
    assert backup["status"] == "partial"
    assert backup["copies"][str(broken)][0] == "failed"
    assert why in backup["copies"][str(broken)][1]
    for good in world.media[:2]:
        assert backup["copies"][str(good)] == ("ok", None)
        [copy] = world.archives(good)
        assert copy.stat().st_size == backup["size"]
    assert world.leftovers() == []


def test_missing_target_then_a_later_run_completes_its_copy(make_app, backend, tmp_path,
                                                            password_hash):
    absent = tmp_path / "media-c"
    world = _world(make_app, backend, tmp_path, password_hash, absent)
    result = world.run("backup", "run", "acme")
    _assert_partial(world, result, absent, "target folder is missing")
    assert not absent.exists()  # never created: an unmounted medium stays visible

    absent.mkdir()  # the medium is back
    result = world.run("backup", "run", "acme")
    assert result.exit_code == 0, result.output
    assert f"completed copy of backup 1 → {absent}" in result.output
    first, second = world.catalogue()
    assert first["status"] == second["status"] == "complete"
    assert sorted(p.name for p in world.archives(absent)) == sorted(
        Path(b["key"]).name for b in (first, second))
    assert world.run("backup", "verify", "acme").exit_code == 0


def test_read_only_target(make_app, backend, tmp_path, password_hash):
    """A real read-only filesystem (tmpfs mounted ``ro``): root cannot write there either.
    Where mounting is not allowed, sysfs's ``/sys/kernel`` (which refuses new entries, even
    to root) stands in."""
    folder = tmp_path / "media-ro"
    mounted = mount_tmpfs(folder, "ro")
    if not mounted:
        folder.rmdir()
        folder = Path("/sys/kernel")
    try:
        world = _world(make_app, backend, tmp_path, password_hash, folder)
        result = world.run("backup", "run", "acme")
        why = "Read-only file system" if mounted else "ermi"
        _assert_partial(world, result, folder, why)
        if mounted:
            assert list(folder.iterdir()) == []
    finally:
        if mounted:
            unmount(folder)


def test_full_target_keeps_no_partial_file(make_app, backend, tmp_path, password_hash):
    folder = tmp_path / "media-full"
    assert mount_tmpfs(folder, "size=16k"), "mounting a small tmpfs needs root"
    try:
        world = _world(make_app, backend, tmp_path, password_hash, folder)
        result = world.run("backup", "run", "acme")
        _assert_partial(world, result, folder, "No space left on device")
        assert list(folder.rglob("*")) == []  # no temporary file, no empty tenant folder
    finally:
        unmount(folder)


KILL_BETWEEN_TARGETS = """
import os, pickle, signal, sys
from backups.cli import backup_group
from backups.targets import FolderTarget
from qalitel import create_app

settings, second = pickle.loads(open(sys.argv[1], "rb").read()), sys.argv[2]
real_put = FolderTarget.put

def put(self, key, source):
    if str(self.root) == second:
        os.kill(os.getpid(), signal.SIGKILL)
    real_put(self, key, source)

FolderTarget.put = put
result = create_app(settings, web=False).test_cli_runner().invoke(backup_group, ["run", "acme"])
sys.exit(f"not killed: {result.output}")
"""


def test_process_killed_between_targets_is_resumed(make_app, backend, tmp_path,
                                                   password_hash):
    """A real ``qalitel backup run`` process is SIGKILLed after its first copy, as it starts
    the second: the catalogue keeps the running backup with its one copy, the second target
    holds nothing, and the next run completes the missing copy."""
    import dataclasses
    import pickle
    import signal
    import subprocess
    import sys

    world = make_world(make_app, backend, tmp_path, password_hash)
    second = world.media[1]
    frozen = tmp_path / "settings.pickle"
    frozen.write_bytes(pickle.dumps(dataclasses.replace(world.settings, extra={})))
    done = subprocess.run([sys.executable, "-c", KILL_BETWEEN_TARGETS, str(frozen),
                           str(second)], capture_output=True, check=False)
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()
    [backup] = world.catalogue()
    assert backup["status"] == "running" and backup["sha256"]
    assert list(backup["copies"]) == [str(world.media[0])]
    assert world.archives(second) == []
    staging = world.settings.instance_dir / "backup-staging"
    [dead] = [p for p in staging.iterdir() if p.is_dir()]  # the dead run's: ciphertext only
    assert sorted(p.name for p in dead.iterdir()) == [".lock", "archive.tar.age"]

    result = world.run("backup", "run", "acme")
    assert result.exit_code == 0, result.output
    assert f"completed copy of backup 1 → {second}" in result.output
    assert [b["status"] for b in world.catalogue()] == ["complete", "complete"]
    assert world.leftovers() == []  # the dead run's staging folder was swept
    assert world.run("backup", "verify", "acme").exit_code == 0


def _fake_pg_bin(tmp_path: Path, body: str) -> Path:
    """A ``QALITEL_PG_BIN_DIR`` whose ``pg_dump`` is ``body`` and whose ``pg_restore`` is
    the real one."""
    import shutil

    folder = tmp_path / "pgbin"
    folder.mkdir()
    script = folder / "pg_dump"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o755)
    os.symlink(shutil.which("pg_restore"), folder / "pg_restore")
    return folder


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_pg_dump_killed_midway(make_app, backend, tmp_path, password_hash):
    """A ``pg_dump`` that writes part of a dump and is killed (SIGKILL): the run fails for
    that tenant, says so, and no target receives anything."""
    body = ('for a in "$@"; do case "$a" in --file=*) out="${a#--file=}";; esac; done\n'
            'head -c 5000 /dev/urandom > "$out"\nkill -9 $$\n')
    world = make_world(make_app, backend, tmp_path, password_hash,
                       pg_bin_dir=_fake_pg_bin(tmp_path, body))
    result = world.run("backup", "run", "acme")
    assert result.exit_code == 1, result.output
    assert "pg_dump failed (killed by signal 9)" in result.output
    [backup] = world.catalogue()
    assert backup["status"] == "failed" and "killed by signal 9" in backup["error"]
    assert backup["copies"] == {} and backup["sha256"] is None
    assert all(world.archives(m) == [] for m in world.media)
    assert world.leftovers() == []


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_pg_dump_exiting_0_with_a_truncated_dump_is_caught(make_app, backend, tmp_path,
                                                           password_hash):
    body = ('for a in "$@"; do case "$a" in --file=*) out="${a#--file=}";; esac; done\n'
            'printf "PGDMP" > "$out"\nexit 0\n')
    world = make_world(make_app, backend, tmp_path, password_hash,
                       pg_bin_dir=_fake_pg_bin(tmp_path, body))
    result = world.run("backup", "run", "acme")
    assert result.exit_code == 1
    assert "the dump pg_dump wrote is not a whole archive" in result.output
    assert all(world.archives(m) == [] for m in world.media)
    assert world.leftovers() == []


@pytest.mark.parametrize("keep", ["2/3", "1/2", "-1"])
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_real_dump_cut_inside_its_data_with_exit_0_is_caught(make_app, backend, tmp_path,
                                                             password_hash, keep):
    """A real dump cut short inside its data blocks (where ``pg_restore --list``, which reads
    only the table of contents, would still pass), by a ``pg_dump`` exiting 0."""
    import shutil

    cut = "$((size - 1))" if keep == "-1" else f"$((size * {keep}))"
    body = (f'{shutil.which("pg_dump")} "$@" || exit $?\n'
            'for a in "$@"; do case "$a" in --file=*) out="${a#--file=}";; esac; done\n'
            f'size=$(stat -c %s "$out")\ntruncate -s {cut} "$out"\nexit 0\n')
    world = make_world(make_app, backend, tmp_path, password_hash,
                       pg_bin_dir=_fake_pg_bin(tmp_path, body))
    result = world.run("backup", "run", "acme")
    assert result.exit_code == 1, result.output
    assert "the dump pg_dump wrote is not a whole archive" in result.output
    [backup] = world.catalogue()
    assert backup["status"] == "failed" and backup["sha256"] is None
    assert all(world.archives(m) == [] for m in world.media)
    assert world.leftovers() == []


KILL_AFTER_DUMP = """
import os, pickle, signal, sys
import backups.archive as archive
from backups.cli import backup_group
from qalitel import create_app

settings = pickle.loads(open(sys.argv[1], "rb").read())
real_dump = archive.dump_database

def dump(*args):
    real_dump(*args)  # the plaintext dump is in the staging folder, not yet encrypted
    os.kill(os.getpid(), signal.SIGKILL)

archive.dump_database = dump
result = create_app(settings, web=False).test_cli_runner().invoke(backup_group, ["run", "acme"])
sys.exit(f"not killed: {result.output}")
"""


@pytest.mark.parametrize("then", ["backup run acme", "backup sweep"])
def test_process_killed_while_dumping(make_app, backend, tmp_path, password_hash, then):
    """A ``qalitel backup run`` SIGKILLed with the database dumped but not yet encrypted:
    nothing reached any target; the next run (or a sweep) removes the plaintext, marks the
    dead backup failed, and a run makes a good one."""
    import dataclasses
    import pickle
    import signal
    import subprocess
    import sys

    from backups.run import DIED

    world = make_world(make_app, backend, tmp_path, password_hash)
    frozen = tmp_path / "settings.pickle"
    frozen.write_bytes(pickle.dumps(dataclasses.replace(world.settings, extra={})))
    done = subprocess.run([sys.executable, "-c", KILL_AFTER_DUMP, str(frozen)],
                          capture_output=True, check=False)
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()
    [backup] = world.catalogue()
    assert backup["status"] == "running" and backup["sha256"] is None
    assert all(world.archives(m) == [] for m in world.media)
    [dead] = [p for p in (world.settings.instance_dir / "backup-staging").iterdir()
              if p.is_dir()]
    assert any(p.name.startswith("database.") for p in dead.iterdir())  # plaintext

    result = world.run(*then.split())
    assert result.exit_code == 0, result.output
    if then == "backup sweep":
        assert f"acme: backup 1 failed: {DIED}" in result.output
        assert [b["status"] for b in world.catalogue()] == ["failed"]
        assert world.leftovers() == []
        assert world.run("backup", "run", "acme").exit_code == 0
    first, second = world.catalogue()
    assert (first["status"], first["error"], first["copies"]) == ("failed", DIED, {})
    assert second["status"] == "complete"
    assert [len(world.archives(m)) for m in world.media] == [1, 1]
    assert world.leftovers() == []
    assert world.run("backup", "verify", "acme", "--deep").exit_code == 0


def test_a_database_naming_another_tenant_is_not_backed_up(make_app, backend, tmp_path,
                                                           password_hash):
    """The registry points at a database whose identity row names another tenant (a moved or
    swapped database): the backup is refused with a clear message and no target gets it."""
    from sqlalchemy import text

    from tests.conftest import in_tenant

    world = make_world(make_app, backend, tmp_path, password_hash)
    with in_tenant(world.app, "acme") as session:
        session.execute(text("UPDATE tenant_identity SET slug = 'other' WHERE id = 1"))
        session.commit()
    world.app.extensions["qalitel_engines"].clear()
    result = world.run("backup", "run", "acme")
    assert result.exit_code == 1, result.output
    assert "database does not belong to tenant acme" in result.output
    [backup] = world.catalogue()
    assert backup["status"] == "failed" and backup["sha256"] is None
    assert "does not belong to tenant acme" in backup["error"]
    assert all(world.archives(m) == [] for m in world.media)
    assert world.leftovers() == []
