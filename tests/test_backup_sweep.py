"""An in-place restore or a deep verification killed (SIGKILL, a real subprocess) at each of
its steps, on both backends: the tenant always has a database, the old one or the restored
one; ``qalitel backup sweep`` then puts the tenant back as it was (before the database swap)
or keeps the restored one (after it), gives it its status back, and leaves no scratch
database, file, folder or journal. A live run's work and a live tenant are never swept."""

from __future__ import annotations

import dataclasses
import pickle
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from backups.restore import STEPS
from tests.backup_world import (
    TITLE,
    BackupWorld,
    change_everything,
    files,
    leftovers,
    make_world,
    status,
)

KILL_RESTORE = """
import os, pickle, signal, sys
from qalitel import create_app

settings, slug, step, new_slug = pickle.loads(open(sys.argv[1], "rb").read())
app = create_app(settings, web=False)

def die(label):
    if label == step:
        os.kill(os.getpid(), signal.SIGKILL)

with app.app_context():
    from backups.models import Backup
    from backups.restore import restore, restore_as
    from backups.targets import parse_targets
    from core.db import db
    from tenants.service import get_tenant

    tenant, backup = get_tenant(slug), db.session.get(Backup, 1)
    engines = app.extensions["qalitel_engines"]
    if new_slug:
        restore_as(tenant, backup, new_slug, settings, parse_targets(settings), engines,
                   fault=die)
    else:
        restore(tenant, backup, settings, parse_targets(settings), engines, fault=die)
sys.exit("not killed")
"""

KILL_VERIFY = """
import os, pickle, signal, sys
from qalitel import create_app
import backups.verify as verify

settings, slug = pickle.loads(open(sys.argv[1], "rb").read())

def die(*_args, **_kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

verify.pg_counts = die  # after pg_restore filled the scratch database
verify._restore_sqlite = die  # the plaintext dump sits in the staging folder
app = create_app(settings, web=False)
with app.app_context():
    from backups.targets import parse_targets
    from tenants.service import get_tenant

    verify.deep_verify(get_tenant(slug), settings, parse_targets(settings))
sys.exit("not killed")
"""


KILL_MID_COPY = """
import os, pickle, shutil, signal, sys
import backups.targets as targets
from backups.cli import backup_group
from qalitel import create_app

settings, second = pickle.loads(open(sys.argv[1], "rb").read())
real = shutil.copyfileobj

def copy(reader, writer, size):
    if writer.name.startswith(second):  # part of the copy on the second medium, then death
        writer.write(reader.read(4096))
        writer.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    real(reader, writer, size)

targets.shutil.copyfileobj = copy
create_app(settings, web=False).test_cli_runner().invoke(backup_group, ["run", "acme"])
sys.exit("not killed")
"""


def _killed(world: BackupWorld, script: str, *args: object) -> None:
    frozen = world.tmp / "settings.pickle"
    frozen.write_bytes(pickle.dumps((dataclasses.replace(world.settings, extra={}), *args)))
    done = subprocess.run([sys.executable, "-c", script, str(frozen)], capture_output=True,
                          check=False)
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()[-2000:]


def _raw_titles(world: BackupWorld, slug: str) -> list[str]:
    """The titles in the tenant's database as it is now, whatever the tenant's status."""
    from sqlalchemy import text

    from core.db import db
    from tenants.engines import TenantInfo, build_engine
    from tenants.registry import Tenant

    with world.app.app_context():
        info = TenantInfo.from_row(db.session.query(Tenant).filter_by(slug=slug).one())
        db.session.remove()
    engine = build_engine(info, world.settings, pooled=False)
    try:
        with engine.connect() as conn:
            return sorted(conn.execute(text("SELECT title FROM nonconformities")).scalars())
    finally:
        engine.dispose()


@pytest.fixture
def world(make_app, backend, tmp_path, password_hash) -> BackupWorld:
    world = make_world(make_app, backend, tmp_path, password_hash)
    assert world.run("backup", "run", "acme").exit_code == 0
    return world


@pytest.mark.parametrize("step", STEPS)
def test_an_in_place_restore_killed_at_any_step_is_settled_by_the_sweep(world, backend,
                                                                        step):
    restored_titles, restored_files = _raw_titles(world, "acme"), files(world)
    change_everything(world)
    old_titles, old_files = _raw_titles(world, "acme"), files(world)
    assert old_titles != restored_titles

    _killed(world, KILL_RESTORE, "acme", step, None)
    swapped = STEPS.index(step) >= STEPS.index("swapped")
    # never without a database: the old one before the swap, the restored one after it
    assert _raw_titles(world, "acme") == (restored_titles if swapped else old_titles)
    # suspended for the whole restore: from before it stages until after the check
    in_restore = STEPS.index("suspended") <= STEPS.index(step) <= STEPS.index("checked")
    assert status(world) == ("suspended" if in_restore else "active")

    result = world.run("backup", "sweep")
    assert result.exit_code == 0, result.output
    assert status(world) == "active"
    if swapped:
        assert _raw_titles(world, "acme") == restored_titles and TITLE in restored_titles
        assert files(world) == restored_files
        if step != "cleaned":
            assert "kept the restored database" in result.output
    else:
        assert _raw_titles(world, "acme") == old_titles
        assert files(world) == old_files
        assert "the previous database and files are in place" in result.output
    assert leftovers(world, backend) == []
    assert world.run("backup", "sweep").output.strip() == "nothing to sweep"
    # the tenant serves and is backed up as before
    assert world.run("backup", "run", "acme").exit_code == 0
    assert world.run("backup", "verify", "acme", "--deep").exit_code == 0


@pytest.mark.parametrize("step", ["journal", "staged", "swapped"])
def test_a_killed_restore_as_a_new_tenant(world, backend, step):
    from core.db import db
    from tenants.registry import Tenant

    _killed(world, KILL_RESTORE, "acme", step, "acme-copy")
    result = world.run("backup", "sweep")
    assert result.exit_code == 0, result.output
    with world.app.app_context():
        copies = db.session.query(Tenant).filter_by(slug="acme-copy").all()
        assert [t.status.value for t in copies] == ([] if step != "swapped" else ["active"])
    if step == "swapped":
        assert TITLE in _raw_titles(world, "acme-copy")
    assert leftovers(world, backend) == []


def test_a_killed_deep_verification_is_swept(world, backend):
    _killed(world, KILL_VERIFY, "acme")
    assert leftovers(world, backend) != []  # its scratch database / plaintext staging
    result = world.run("backup", "sweep", "--json")
    assert result.exit_code == 0, result.output
    assert leftovers(world, backend) == []
    assert world.run("backup", "verify", "acme", "--deep").exit_code == 0


def test_the_sweep_leaves_live_tenants_and_live_runs_alone(world, backend):
    """A tenant's own database, files and staging work, and a scratch database whose run
    still holds its lock, are never swept."""
    from backups import archive, journal
    from tests.conftest import PG_URL

    before_titles, before_files = _raw_titles(world, "acme"), files(world)
    token = "0123456789ab"
    with journal.alive(world.settings, token), \
            archive.staging_folder(world.settings, f"restore-{token}") as staging:
        (staging / "archive.age").write_bytes(b"in progress")
        live_scratch = Path(f"{world.settings.sqlite_tenant_dir}/acme.sqlite3.restoring-"
                            f"{token}")
        live_scratch.write_bytes(b"in progress")
        if backend == "postgresql":
            name = journal.scratch_database(world.settings, "verify", token)
            with journal.held_on_server(PG_URL, token) as conn, conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
                result = world.run("backup", "sweep")
                cur.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (name,))
                assert cur.fetchone()[0] == 1
                cur.execute(f'DROP DATABASE "{name}"')
        else:
            result = world.run("backup", "sweep")
        assert result.exit_code == 0, result.output
        assert result.output.strip() == "nothing to sweep"
        assert (staging / "archive.age").exists() and live_scratch.exists()
        live_scratch.unlink()
    assert _raw_titles(world, "acme") == before_titles and files(world) == before_files
    assert status(world) == "active"


@pytest.mark.parametrize("step", STEPS[:STEPS.index("swapped") + 1])
def test_a_restore_failing_at_any_step_before_it_checks_out_changes_nothing(world, backend,
                                                                           step):
    """The same steps, failing with an error instead of a kill: the restore itself puts
    everything back, says so, and leaves nothing for the sweep."""
    from backups.models import Backup
    from backups.restore import restore
    from backups.targets import parse_targets
    from core.db import db
    from tenants.service import get_tenant

    change_everything(world)
    old_titles, old_files = _raw_titles(world, "acme"), files(world)

    def fail(label: str) -> None:
        if label == step:
            raise OSError(f"injected failure at {label}")

    with world.app.app_context():
        with pytest.raises(OSError, match=f"injected failure at {step}"):
            restore(get_tenant("acme"), db.session.get(Backup, 1), world.settings,
                    parse_targets(world.settings), world.app.extensions["qalitel_engines"],
                    fault=fail)
        db.session.remove()
    assert _raw_titles(world, "acme") == old_titles and files(world) == old_files
    assert status(world) == "active"
    assert leftovers(world, backend) == []
    assert world.run("backup", "sweep").output.strip() == "nothing to sweep"


def test_a_copy_killed_mid_write_leaves_a_partial_the_sweep_removes(world):
    """A ``backup run`` SIGKILLed while it writes its copy to the second medium leaves a
    ``.….partial`` there. The next run completes that copy under a name of its own and
    leaves the leftover alone. While another host holds the tenant's backup lease (it may
    be writing), the sweep removes only leftovers older than a lease's lifetime; once the
    lease is free, the rest."""
    import os
    import shutil
    import time

    from backups.run import LEASE_TTL
    from core.jobs import lease

    _killed(world, KILL_MID_COPY, str(world.media[1]))
    [partial] = world.media[1].glob("*/.*.partial")
    left = partial.read_bytes()
    assert len(left) == 4096
    resumed = world.run("backup", "run", "acme")
    assert resumed.exit_code == 0, resumed.output
    assert f"completed copy of backup 2 → {world.media[1]}" in resumed.output
    assert [b["status"] for b in world.catalogue()] == ["complete"] * 3
    assert partial.read_bytes() == left

    old = partial.with_name(".20200101T000000Z-9.qbk.age.0123456789ab.partial")
    shutil.copy(partial, old)
    stale = time.time() - LEASE_TTL.total_seconds() - 60
    os.utime(old, (stale, stale))
    with world.app.app_context():
        other = lease.acquire(f"backup:{world.uid}", LEASE_TTL, "other-host:1:beefcafe")
        assert other is not None
    swept = world.run("backup", "sweep")
    assert swept.exit_code == 0, swept.output
    assert f"removed partial copy:{world.media[1]}/{world.uid}/{old.name}" in swept.output
    assert not old.exists() and partial.exists()
    with world.app.app_context():
        other.release()
    swept = world.run("backup", "sweep")
    assert swept.exit_code == 0, swept.output
    assert f"removed partial copy:{world.media[1]}/{world.uid}/{partial.name}" in swept.output
    assert world.leftovers() == []
    assert world.run("backup", "verify", "acme").exit_code == 0
    assert world.run("backup", "sweep").output.strip() == "nothing to sweep"
