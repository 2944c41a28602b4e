"""A backup and its tenant's lease, with the platform database on each backend: no platform
transaction (nor pooled connection) is held while a tenant is dumped, and a run whose lease
another host took over stops before cataloguing anything more: that tenant fails with
"lease lost", the other host's lease is left alone."""

from __future__ import annotations

from datetime import timedelta

import psycopg2
import pytest
from sqlalchemy import select, update

from backups import archive
from backups.targets import FolderTarget
from core import clock
from core.db import db
from core.jobs.models import JobLock
from tests.backup_world import BackupWorld, make_world

OTHER_HOST = "other-host:1:beefcafe"


@pytest.fixture
def world(platform_database, make_app, backend, tmp_path, password_hash) -> BackupWorld:
    overrides = {"database_url": platform_database} if platform_database else {}
    return make_world(make_app, backend, tmp_path, password_hash, **overrides)


def _platform_states(url: str) -> list[str]:
    """The state of every other connection to the platform database (a second host's view)."""
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT state FROM pg_stat_activity WHERE datname = current_database() "
                        "AND pid <> pg_backend_pid()")
            return sorted(str(row[0]) for row in cur.fetchall())
    finally:
        conn.close()


def test_no_platform_transaction_is_held_while_a_tenant_is_dumped(world, platform_database,
                                                                  monkeypatch):
    real = archive.dump_database
    seen: dict = {}

    def dump_and_look(*args):
        out = real(*args)
        seen["checked_out"] = db.engine.pool.checkedout()  # the app's platform pool
        if platform_database:
            seen["states"] = _platform_states(platform_database)
        return out

    monkeypatch.setattr(archive, "dump_database", dump_and_look)
    result = world.run("backup", "run", "acme")
    assert result.exit_code == 0, result.output
    assert seen["checked_out"] == 0
    if platform_database:
        assert "idle in transaction" not in seen["states"], seen["states"]
    assert [b["status"] for b in world.catalogue()] == ["complete"]


def _take_over(world: BackupWorld) -> None:
    """What a second host does once the lease expired: the lease row becomes its own."""
    with world.app.app_context(), db.engine.begin() as conn:
        done = conn.execute(update(JobLock).where(JobLock.name == f"backup:{world.uid}")
                            .values(holder=OTHER_HOST,
                                    expires_at=clock.now() + timedelta(minutes=10)))
        assert done.rowcount == 1


def _holder(world: BackupWorld) -> str | None:
    with world.app.app_context():
        return db.session.execute(select(JobLock.holder).where(
            JobLock.name == f"backup:{world.uid}")).scalar()


@pytest.mark.parametrize("when", ["dump", "first copy"])
def test_a_run_whose_lease_was_taken_over_fails_that_tenant(world, monkeypatch, when):
    if when == "dump":
        real_dump = archive.dump_database

        def dump_then_lose(*args):
            out = real_dump(*args)
            _take_over(world)
            return out

        monkeypatch.setattr(archive, "dump_database", dump_then_lose)
    else:
        real_put = FolderTarget.put

        def put_then_lose(self, key, source):
            real_put(self, key, source)
            if self.root == world.media[0]:
                _take_over(world)

        monkeypatch.setattr(FolderTarget, "put", put_then_lose)
    result = world.run("backup", "run", "acme")
    assert result.exit_code == 1, result.output
    assert "acme: lease lost" in result.output and "Traceback" not in result.output
    [backup] = world.catalogue()
    assert backup["status"] == "failed" and "lease lost" in backup["error"]
    written = [] if when == "dump" else [str(world.media[0])]
    assert [t for t, (state, _e) in backup["copies"].items() if state == "ok"] == written
    assert world.archives(world.media[1]) == []
    assert _holder(world) == OTHER_HOST  # the other host's lease is not released
    assert world.leftovers() == []
