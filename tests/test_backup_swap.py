"""An in-place restore as the rest of the host sees it, on both backends: a pooled engine
opened before the restore (what a web worker holds) serves the restored data after it and
its writes land in the tenant's database; the tenant is suspended for the whole restore, so
a write at any of its steps is refused (423) and nothing of it lands; a deep verification
restores the dump as the tenant's own role, as the in-place restore does."""

from __future__ import annotations

import sqlite3
from contextlib import closing

import pytest
from sqlalchemy import text

from backups.restore import STEPS
from tests.backup_world import (
    TITLE,
    BackupWorld,
    change_everything,
    leftovers,
    make_world,
    status,
)
from tests.conftest import csrf_token, login


@pytest.fixture
def world(make_app, backend, tmp_path, password_hash) -> BackupWorld:
    return make_world(make_app, backend, tmp_path, password_hash)


def _titles(engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.execute(text("SELECT title FROM nonconformities")).scalars())


def test_a_pooled_engine_opened_before_the_restore_serves_the_restored_data(world, backend):
    from tenants.engines import build_engine
    from tenants.resolution import load_tenant

    with world.app.app_context():
        info = load_tenant("acme")
    assert info is not None
    web = build_engine(info, world.settings)  # a web worker's engine, its pool in use
    assert TITLE in _titles(web)
    assert world.run("backup", "run", "acme").exit_code == 0
    change_everything(world)
    assert TITLE not in _titles(web)

    result = world.run("backup", "restore", "acme", "1")
    assert result.exit_code == 0, result.output
    fresh = build_engine(info, world.settings, pooled=False)
    restored = _titles(fresh)
    assert TITLE in restored
    assert _titles(web) == restored  # not the replaced database
    with web.connect() as conn:
        conn.execute(text("UPDATE nonconformities SET title = 'written after the restore'"))
        conn.commit()
    assert set(_titles(fresh)) == {"written after the restore"}  # not into a deleted file
    web.dispose()
    fresh.dispose()
    assert leftovers(world, backend) == []
    if backend == "sqlite":  # the swap's marker is cleared once the restore stands
        path = world.settings.sqlite_tenant_dir / info.database_name
        with closing(sqlite3.connect(path)) as conn:
            assert conn.execute("PRAGMA user_version").fetchone()[0] == 0


def _record_form(client, user_id: int, title: str) -> dict[str, object]:
    return {"csrf_token": csrf_token(client, "/t/acme/records/new"), "title": title,
            "description": "x", "detected_on": "2024-01-02", "detected_by": user_id,
            "origin": "internal", "severity": "minor", "assignee": "0"}


def test_writes_at_every_step_of_a_restore_are_refused(world, backend):
    from backups.models import Backup
    from backups.restore import restore
    from backups.targets import parse_targets
    from core.db import db
    from qalitel.users.models import User
    from tenants.service import get_tenant
    from tests.conftest import in_tenant

    with in_tenant(world.app, "acme") as session:
        user_id = session.query(User).filter_by(email="user@acme.example").one().id
    client = world.app.test_client()
    assert login(client, "acme", "user@acme.example").status_code in (302, 303)
    form = _record_form(client, user_id, "control")
    assert world.run("backup", "run", "acme").exit_code == 0
    change_everything(world)

    refused: list[str] = []

    def write(step: str) -> None:
        response = client.post("/t/acme/records/new",
                               data={**form, "title": f"written at {step}"})
        if response.status_code == 423:
            refused.append(step)

    with world.app.app_context():
        restore(get_tenant("acme"), db.session.get(Backup, 1), world.settings,
                parse_targets(world.settings), world.app.extensions["qalitel_engines"],
                fault=write)
        db.session.remove()
    assert refused == list(STEPS[STEPS.index("suspended"):STEPS.index("checked") + 1])
    assert status(world) == "active"
    # the writes the tenant took before and after the restore's suspension landed and were
    # replaced by the backup; none of those it refused did
    from tenants.engines import build_engine
    from tenants.resolution import load_tenant

    with world.app.app_context():
        info = load_tenant("acme")
    assert info is not None
    engine = build_engine(info, world.settings, pooled=False)
    titles = _titles(engine)
    assert TITLE in titles
    assert not [t for t in titles if t in {f"written at {s}" for s in refused}]
    # and the same form, posted now, is taken
    answer = client.post("/t/acme/records/new", data=_record_form(client, user_id, "after"))
    assert answer.status_code == 303, answer.get_data(as_text=True)[:2000]
    assert "after" in _titles(engine)
    engine.dispose()


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_a_deep_verification_restores_as_the_tenants_role(world, monkeypatch):
    """The scratch database and every table pg_restore made in it are the tenant role's
    (never a superuser's): a dump's content runs with the rights the tenant has."""
    import backups.verify as verify
    from core.db import db
    from tenants.registry import Tenant

    with world.app.app_context():
        role = db.session.query(Tenant).filter_by(slug="acme").one().role_name
    assert world.run("backup", "run", "acme").exit_code == 0
    seen: dict[str, list[str]] = {}
    counts = verify.pg_counts

    def spy(cursor):
        cursor.execute("SELECT pg_get_userbyid(datdba) FROM pg_database "
                       "WHERE datname = current_database()")
        seen["database"] = [row[0] for row in cursor.fetchall()]
        cursor.execute("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'")
        seen["tables"] = [row[0] for row in cursor.fetchall()]
        return counts(cursor)

    monkeypatch.setattr(verify, "pg_counts", spy)
    result = world.run("backup", "verify", "acme", "--deep")
    assert result.exit_code == 0, result.output
    assert seen == {"database": [role], "tables": [role]}
    assert leftovers(world, "postgresql") == []


KILL_MID_COPY = """
import os, pickle, signal, sys
from contextlib import closing
from qalitel import create_app
from backups import swap

settings, live = pickle.loads(open(sys.argv[1], "rb").read())
real = swap._copy_content

def copy(source, target):
    if target != live:  # the previous content set aside: copied whole
        return real(source, target)
    def die(_status, remaining, total):
        if remaining < total - 2:  # pages written, the transaction not committed
            os.kill(os.getpid(), signal.SIGKILL)
    with closing(swap._sqlite(source)) as reader, closing(swap._sqlite(target)) as writer:
        reader.backup(writer, pages=1, progress=die)

swap._copy_content = copy
app = create_app(settings, web=False)
with app.app_context():
    from backups.models import Backup
    from backups.restore import restore
    from backups.targets import parse_targets
    from core.db import db
    from tenants.service import get_tenant

    restore(get_tenant("acme"), db.session.get(Backup, 1), settings, parse_targets(settings),
            app.extensions["qalitel_engines"])
sys.exit("not killed")
"""


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_content_swap_killed_midway_leaves_the_live_file_as_it_was(world):
    """SQLite only (PostgreSQL's commit point is one rename transaction): the restored
    content copied into the live file page by page, the process killed before the copy
    commits; an engine of another process reads the old data, unharmed, and the sweep puts
    the tenant back as it was."""
    import dataclasses
    import pickle
    import signal
    import subprocess
    import sys

    from tenants.engines import build_engine
    from tenants.resolution import load_tenant

    assert world.run("backup", "run", "acme").exit_code == 0
    change_everything(world)
    with world.app.app_context():
        info = load_tenant("acme")
    assert info is not None
    web = build_engine(info, world.settings)
    old = _titles(web)
    live = str(world.settings.sqlite_tenant_dir / info.database_name)
    frozen = world.tmp / "settings.pickle"
    frozen.write_bytes(pickle.dumps((dataclasses.replace(world.settings, extra={}), live)))
    done = subprocess.run([sys.executable, "-c", KILL_MID_COPY, str(frozen)],
                          capture_output=True, check=False)
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()[-2000:]
    assert _titles(web) == old and status(world) == "suspended"
    with closing(sqlite3.connect(live)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    result = world.run("backup", "sweep")
    assert result.exit_code == 0, result.output
    assert "the previous database and files are in place" in result.output
    assert _titles(web) == old and status(world) == "active"
    assert leftovers(world, "sqlite") == []
    web.dispose()
