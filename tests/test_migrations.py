"""`qalitel tenants migrate`: templates first, tenants behind head upgraded in parallel as their
own role, tenants at head left alone, failures isolated, recorded and retried."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from flask import Flask
from sqlalchemy import create_engine, inspect, make_url, select, text
from sqlalchemy.pool import NullPool

from core.db import db
from tenants import migrate, migrations, pg
from tenants.engines import TenantInfo, sqlite_path
from tenants.migrate import migration_engine
from tenants.provisioning import server_url, sqlite_template_path
from tenants.registry import DatabaseServer, MigrationLedger, MigrationState
from tenants.service import get_tenant
from tests.conftest import PG_PREFIX, provision

HEAD = migrations.head("tenant")
_REVISIONS = [r.revision for r in migrations.script_directory("tenant").walk_revisions()]
PREVIOUS = _REVISIONS[1]  # one step behind head
BASE = _REVISIONS[-1]  # the first revision


def run(app: Flask, *args: str):
    return app.test_cli_runner().invoke(args=["tenants", "migrate", *args])


def settings_of(app: Flask):
    return app.extensions["qalitel_settings"]


def info_of(app: Flask, slug: str) -> TenantInfo:
    with app.app_context():
        return TenantInfo.from_row(get_tenant(slug))


def db_revision(app: Flask, slug: str) -> str | None:
    """The revision the tenant's database really is at (read as the tenant's role)."""
    engine = migration_engine(info_of(app, slug), settings_of(app))
    try:
        with engine.connect() as conn:
            return migrations.current_revision(conn)
    finally:
        engine.dispose()


def registry_revision(app: Flask, slug: str) -> str | None:
    with app.app_context():
        return get_tenant(slug).schema_revision


def tenant_tables(app: Flask, slug: str) -> set[str]:
    engine = migration_engine(info_of(app, slug), settings_of(app))
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def execute_as_tenant(app: Flask, slug: str, statement: str) -> None:
    engine = migration_engine(info_of(app, slug), settings_of(app))
    try:
        with engine.begin() as conn:
            conn.execute(text(statement))
    finally:
        engine.dispose()


def put_behind(app: Flask, slug: str, revision: str = PREVIOUS) -> None:
    """Downgrade a tenant's database with Alembic, as its own role, and say so in the registry
    (what a tenant looks like once a newer release has shipped a revision)."""
    with app.app_context():
        tenant = get_tenant(slug)
        app.extensions["qalitel_engines"].invalidate(tenant.uid)
        engine = migration_engine(TenantInfo.from_row(tenant), settings_of(app))
        try:
            with engine.begin() as conn:
                assert migrations.downgrade(conn, "tenant", revision) == revision
        finally:
            engine.dispose()
        tenant.schema_revision = revision
        db.session.commit()


def break_tenant(app: Flask, slug: str) -> str:
    """Put the tenant at the first revision with a table in the way of the next ones."""
    at_head = tenant_tables(app, slug)
    put_behind(app, slug, BASE)
    conflict = sorted(at_head - tenant_tables(app, slug))[0]
    execute_as_tenant(app, slug, f"CREATE TABLE {conflict} (conflicting INTEGER)")
    return conflict


def ledger(app: Flask, slug: str | None = None) -> list[MigrationLedger]:
    with app.app_context():
        query = select(MigrationLedger).order_by(MigrationLedger.id)
        if slug is not None:
            query = query.where(MigrationLedger.tenant_id == get_tenant(slug).id)
        rows = list(db.session.execute(query).scalars())
        db.session.expunge_all()
        return rows


def user_count(app: Flask, slug: str) -> int:
    engine = migration_engine(info_of(app, slug), settings_of(app))
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM users")).scalar_one()
    finally:
        engine.dispose()


def pg_table_owners(app: Flask, database: str) -> set[str]:
    with app.app_context():
        server = db.session.execute(select(DatabaseServer)).scalars().first()
        url = server_url(settings_of(app), server)
    with pg.admin_connection(url, database) as conn, conn.cursor() as cur:
        cur.execute("SELECT tableowner FROM pg_tables WHERE schemaname = 'public'")
        return {owner for (owner,) in cur.fetchall()}


def test_behind_tenants_reach_head_and_those_at_head_are_not_touched(
        make_app, backend, password_hash, monkeypatch):
    app = make_app(backend)
    for slug in ("alpha", "bravo", "charlie"):
        provision(app, slug, password_hash)
    put_behind(app, "alpha", PREVIOUS)
    put_behind(app, "bravo", BASE)
    started: list[str] = []
    upgrades: list[str] = []
    real_migrate_one, real_upgrade = migrate.migrate_one, migrations.command.upgrade

    def counting_migrate_one(info, settings, target="head"):
        started.append(info.slug)
        return real_migrate_one(info, settings, target)

    def counting_upgrade(config, revision, **kwargs):
        upgrades.append(config.attributes["connection"].engine.url.database)
        return real_upgrade(config, revision, **kwargs)

    monkeypatch.setattr(migrate, "migrate_one", counting_migrate_one)
    monkeypatch.setattr(migrations.command, "upgrade", counting_upgrade)

    result = run(app, "--all", "--jobs", "1")

    assert result.exit_code == 0, result.output
    assert f"head {HEAD}: 2 migrated, 1 skipped (already at head), 0 failed" in result.output
    assert f"migrated alpha: {PREVIOUS} -> {HEAD}" in result.output
    assert f"migrated bravo: {BASE} -> {HEAD}" in result.output
    # charlie was at head: neither the runner nor Alembic opened its database
    assert sorted(started) == ["alpha", "bravo"]
    tenant_upgrades = [name for name in upgrades if ".template-" not in str(name)]
    assert len(tenant_upgrades) == 2
    assert not any("charlie" in str(name) for name in upgrades)
    assert ledger(app, "charlie") == []
    for slug, before in (("alpha", PREVIOUS), ("bravo", BASE)):
        assert db_revision(app, slug) == HEAD
        assert registry_revision(app, slug) == HEAD
        (row,) = ledger(app, slug)
        assert row.state is MigrationState.OK and row.error is None
        assert (row.from_revision, row.to_revision) == (before, HEAD)
        assert row.target == f"tenant:{slug}"
        assert row.duration_ms is not None and row.duration_ms > 0
        assert row.finished_at is not None and row.started_at <= row.finished_at
        assert user_count(app, slug) == 2  # the data went through the round trip
    assert len({row.run_id for row in ledger(app)}) == 1
    if backend == "postgresql":  # upgraded as the tenant's own role: it owns the new tables
        for slug in ("alpha", "bravo"):
            info = info_of(app, slug)
            assert pg_table_owners(app, info.database_name) == {info.role_name}

    upgrades_so_far = len(upgrades)
    again = run(app, "--all", "--jobs", "1")
    assert again.exit_code == 0, again.output
    assert "0 migrated, 3 skipped (already at head), 0 failed" in again.output
    assert sorted(started) == ["alpha", "bravo"]
    assert len(upgrades) == upgrades_so_far  # nor the templates: already at head


def test_a_failing_tenant_does_not_stop_the_others_then_retry_failed_migrates_only_it(
        make_app, backend, password_hash):
    app = make_app(backend)
    for slug in ("alpha", "bravo", "charlie", "delta"):
        provision(app, slug, password_hash)
    for slug in ("alpha", "charlie", "delta"):
        put_behind(app, slug)
    conflict = break_tenant(app, "bravo")
    bravo_tables = tenant_tables(app, "bravo")

    result = run(app, "--all", "--jobs", "3")  # worker processes

    assert result.exit_code != 0
    assert "3 migrated, 0 skipped (already at head), 1 failed, 3 worker(s)" in result.output
    assert "FAILED bravo:" in result.output
    assert "Error: 1 failed: bravo" in result.output
    for slug in ("alpha", "charlie", "delta"):
        assert db_revision(app, slug) == HEAD and registry_revision(app, slug) == HEAD
    assert db_revision(app, "bravo") == BASE and registry_revision(app, "bravo") == BASE
    (failed,) = ledger(app, "bravo")
    assert failed.state is MigrationState.FAILED
    assert failed.from_revision == BASE and failed.to_revision is None
    assert conflict in failed.error
    assert failed.duration_ms is not None and failed.finished_at is not None
    # the failed upgrade was one transaction: nothing of it is left in bravo's database
    assert tenant_tables(app, "bravo") == bravo_tables

    execute_as_tenant(app, "bravo", f"DROP TABLE {conflict}")
    put_behind(app, "charlie")  # behind, but its last migration did not fail
    retry = run(app, "--all", "--retry-failed", "--jobs", "3")

    assert retry.exit_code == 0, retry.output
    assert "1 migrated, 0 skipped (already at head), 0 failed" in retry.output
    assert f"migrated bravo: {BASE} -> {HEAD}" in retry.output
    assert db_revision(app, "bravo") == HEAD and registry_revision(app, "bravo") == HEAD
    assert [row.state for row in ledger(app, "bravo")] == [MigrationState.FAILED,
                                                           MigrationState.OK]
    assert db_revision(app, "charlie") == PREVIOUS and len(ledger(app, "charlie")) == 1
    assert run(app, "--all", "--retry-failed").output.startswith(
        f"head {HEAD}: 0 migrated, 0 skipped")


def test_parallel_workers_are_bounded_by_the_connection_budget(make_app, backend,
                                                                password_hash):
    app = make_app(backend, migrate_connection_budget=2)
    for slug in ("alpha", "bravo", "charlie"):
        provision(app, slug, password_hash)
        put_behind(app, slug)

    result = run(app, "--all", "--jobs", "8")

    assert result.exit_code == 0, result.output
    assert "3 migrated, 0 skipped (already at head), 0 failed, 2 worker(s)" in result.output
    for slug in ("alpha", "bravo", "charlie"):
        assert db_revision(app, slug) == HEAD and registry_revision(app, slug) == HEAD
        assert ledger(app, slug)[0].state is MigrationState.OK
    if backend == "postgresql":
        info = info_of(app, "charlie")
        assert pg_table_owners(app, info.database_name) == {info.role_name}


def test_named_tenants_only(make_app, backend, password_hash):
    app = make_app(backend)
    for slug in ("alpha", "bravo", "charlie"):
        provision(app, slug, password_hash)
        put_behind(app, slug)

    result = run(app, "alpha", "charlie")

    assert result.exit_code == 0, result.output
    assert "2 migrated, 0 skipped" in result.output
    assert db_revision(app, "alpha") == HEAD and db_revision(app, "charlie") == HEAD
    assert db_revision(app, "bravo") == PREVIOUS and registry_revision(app, "bravo") == PREVIOUS
    assert ledger(app, "bravo") == []


def test_bad_arguments_fail_clearly_before_any_work(make_app, backend, password_hash):
    app = make_app(backend)
    provision(app, "alpha", password_hash)
    put_behind(app, "alpha")
    cases = [
        (["alpha", "--all"], "name tenants or pass --all (not both)"),
        ([], "name tenants or pass --all (not both)"),
        (["alpha", "zulu"], "no active or suspended tenant named zulu"),
        (["Bad_Slug"], "invalid slug 'Bad_Slug'"),
        (["--all", "--jobs", "0"], "Invalid value for '--jobs'"),
    ]
    for args, message in cases:
        result = run(app, *args)
        assert result.exit_code != 0, args
        assert message in result.output, (args, result.output)
    assert ledger(app) == []
    assert db_revision(app, "alpha") == PREVIOUS


def test_a_missing_tenant_database_is_reported_not_recreated(make_app, backend,
                                                             password_hash):
    app = make_app(backend)
    for slug in ("alpha", "bravo"):
        provision(app, slug, password_hash)
        put_behind(app, slug)
    info = info_of(app, "bravo")
    with app.app_context():
        app.extensions["qalitel_engines"].clear()
        if backend == "sqlite":
            path = sqlite_path(settings_of(app), info.database_name)
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        else:
            server = db.session.execute(select(DatabaseServer)).scalars().first()
            with pg.admin_connection(server_url(settings_of(app), server)) as conn:
                pg.drop_database(conn, info.database_name)

    result = run(app, "--all")

    assert result.exit_code != 0
    assert "1 migrated, 0 skipped (already at head), 1 failed" in result.output
    assert "FAILED bravo:" in result.output
    assert db_revision(app, "alpha") == HEAD
    (row,) = ledger(app, "bravo")
    assert row.state is MigrationState.FAILED
    assert (info.database_name if backend == "sqlite" else "does not exist") in row.error
    if backend == "sqlite":
        assert not sqlite_path(settings_of(app), info.database_name).exists()


def test_suspended_tenants_are_migrated_too(make_app, backend, password_hash):
    app = make_app(backend)
    provision(app, "alpha", password_hash)
    put_behind(app, "alpha")
    assert app.test_cli_runner().invoke(args=["tenants", "suspend", "alpha"]).exit_code == 0

    result = run(app, "alpha")

    assert result.exit_code == 0, result.output
    assert db_revision(app, "alpha") == HEAD and registry_revision(app, "alpha") == HEAD


def test_sqlite_template_is_named_by_head_and_rebuilt_first(make_app, password_hash):
    app = make_app("sqlite")
    provision(app, "alpha", password_hash)
    settings = settings_of(app)
    template = sqlite_template_path(settings)
    assert template.name == f".template-{HEAD}.sqlite3" and template.exists()
    stale = template.with_name(f".template-{BASE}.sqlite3")
    shutil.copyfile(template, stale)
    template.unlink()

    result = run(app, "--all")

    assert result.exit_code == 0, result.output
    assert template.exists() and not stale.exists()
    engine = create_engine(f"sqlite:///{template}", poolclass=NullPool)
    with engine.connect() as conn:
        assert migrations.current_revision(conn) == HEAD
    engine.dispose()
    rows = [row for row in ledger(app) if row.tenant_id is None]
    assert [(r.target, r.state, r.to_revision) for r in rows] == [
        ("template:sqlite", MigrationState.OK, HEAD)]


def test_pg_template_is_migrated_as_its_owner_under_the_exclusive_lock(make_app, password_hash):
    """Provisioning holds the template lock in shared mode while it clones; the migration
    waits for it, upgrades as the NOLOGIN owner, and leaves no session on the template."""
    template_name = f"{PG_PREFIX}tmpl_{secrets.token_hex(3)}"
    app = make_app("postgresql", template_database=template_name)
    provision(app, "alpha", password_hash)
    with app.app_context():
        server = db.session.execute(select(DatabaseServer)).scalars().one()
        url = server_url(settings_of(app), server)
        engine = create_engine(make_url(url).set(database=template_name), poolclass=NullPool)
        with engine.begin() as conn:
            conn.execute(text(f'SET ROLE "{pg.TEMPLATE_OWNER}"'))
            migrations.downgrade(conn, "tenant", PREVIOUS)
        engine.dispose()
        server.template_revision = PREVIOUS
        db.session.commit()

    outcome: dict[str, object] = {}

    def migrate_in_thread() -> None:
        with app.app_context():
            outcome["report"] = migrate.migrate_tenants(settings_of(app), None, jobs=1)

    with pg.admin_connection(url) as holder, \
            pg.advisory_lock(holder, f"template:{template_name}", shared=True):
        worker = threading.Thread(target=migrate_in_thread)
        worker.start()
        deadline = time.monotonic() + 20
        waiting = False
        with pg.admin_connection(url) as probe, probe.cursor() as cur:
            while time.monotonic() < deadline and not waiting:
                cur.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                            "AND NOT granted")
                waiting = cur.fetchone()[0] > 0
                time.sleep(0.05)
        assert waiting, "the template migration did not wait for the shared lock"
        assert worker.is_alive()
    worker.join(60)
    assert not worker.is_alive()
    report = outcome["report"]
    assert report.ok, report.failed
    assert report.skipped == ["alpha"]

    with pg.admin_connection(url, template_name) as conn, conn.cursor() as cur:
        cur.execute("SELECT version_num FROM alembic_version")
        assert cur.fetchone()[0] == HEAD
    assert pg_table_owners(app, template_name) == {pg.TEMPLATE_OWNER}
    with pg.admin_connection(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (template_name,))
        assert cur.fetchone()[0] == 0
    with app.app_context():
        assert db.session.execute(select(DatabaseServer)).scalars().one().template_revision \
            == HEAD
    (row,) = [row for row in ledger(app) if row.target == "template:default"]
    assert (row.target, row.state, row.from_revision, row.to_revision) == (
        "template:default", MigrationState.OK, PREVIOUS, HEAD)
    provision(app, "bravo", password_hash)  # cloning the migrated template works
    assert db_revision(app, "bravo") == HEAD


def test_the_real_command_runs_worker_processes(make_app, backend, password_hash):
    """`qalitel tenants migrate` as operators and cron run it: its own process, forkserver
    workers, the settings read from the environment."""
    app = make_app(backend)
    for slug in ("alpha", "bravo"):
        provision(app, slug, password_hash)
        put_behind(app, slug)
    settings = settings_of(app)
    env = {key: value for key, value in os.environ.items() if not key.startswith("QALITEL_")}
    env.update({
        "QALITEL_INSTANCE_DIR": str(settings.instance_dir),
        "QALITEL_DATABASE_URL": settings.database_url,
        "QALITEL_SECRET_KEY": settings.secret_key,
        "QALITEL_ENCRYPTION_KEY": settings.encryption_key,
        "QALITEL_TENANT_SERVER_URL": settings.tenant_server_url,
        "QALITEL_PG_NAME_PREFIX": settings.pg_name_prefix,
        "QALITEL_TEMPLATE_DATABASE": settings.template_database,
        "QALITEL_MIGRATE_CONNECTION_BUDGET": "2",
    })
    command = Path(sys.executable).with_name("qalitel")
    done = subprocess.run([str(command), "tenants", "migrate", "--all"], env=env,
                          capture_output=True, text=True, timeout=120,
                          cwd=settings.instance_dir)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 migrated, 0 skipped (already at head), 0 failed, 2 worker(s)" in done.stdout
    for slug in ("alpha", "bravo"):
        assert db_revision(app, slug) == HEAD and registry_revision(app, slug) == HEAD
        (row,) = ledger(app, slug)
        assert row.state is MigrationState.OK


def test_concurrent_runs_on_one_pg_tenant_are_serialised(make_app, password_hash):
    """Each upgrade holds a per-tenant advisory lock in its transaction: a second run waits,
    then finds the database at head."""
    app = make_app("postgresql")
    provision(app, "alpha", password_hash)
    put_behind(app, "alpha")
    info = info_of(app, "alpha")
    with app.app_context():
        server = db.session.execute(select(DatabaseServer)).scalars().one()
        url = server_url(settings_of(app), server)
    outcome: dict[str, object] = {}

    def migrate_in_thread() -> None:
        with app.app_context():
            outcome["report"] = migrate.migrate_tenants(settings_of(app), ["alpha"], jobs=1)

    with pg.admin_connection(url, info.database_name) as holder, holder.cursor() as cur:
        cur.execute("SELECT pg_advisory_lock(%s)", (pg.lock_key(f"migrate:{info.uid}"),))
        worker = threading.Thread(target=migrate_in_thread)
        worker.start()
        deadline = time.monotonic() + 20
        waiting = False
        with pg.admin_connection(url) as probe, probe.cursor() as pcur:
            while time.monotonic() < deadline and not waiting:
                pcur.execute("SELECT count(*) FROM pg_locks l JOIN pg_database d "
                             "ON d.oid = l.database WHERE l.locktype = 'advisory' "
                             "AND NOT l.granted AND d.datname = %s", (info.database_name,))
                waiting = pcur.fetchone()[0] > 0
                time.sleep(0.05)
        assert waiting and worker.is_alive()
        assert db_revision(app, "alpha") == PREVIOUS
        cur.execute("SELECT pg_advisory_unlock(%s)", (pg.lock_key(f"migrate:{info.uid}"),))
        worker.join(60)
    assert not worker.is_alive()
    assert outcome["report"].ok and db_revision(app, "alpha") == HEAD
