"""Moving a restored database and files into a tenant's place, and settling a swap that
stopped midway, by what is on disk and on the server (the same steps serve the restore
that fails and the sweep after a restore that was killed).

The commit point is one atomic step: PostgreSQL renames the live database aside and the
staged one into its name in one transaction; SQLite hard-links the live file aside, then
``rename``s the staged file over it. So the tenant always has a database: the old one until
the commit point, the restored one after it. The files are swapped just before it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import psycopg2
from psycopg2 import sql

from backups import archive
from backups.journal import Plan, scratch_database
from core.config import Settings
from tenants import pg
from tenants.engines import sqlite_path
from tenants.registry import Backend, Tenant

ident = sql.Identifier


def plan_for(settings: Settings, tenant: Tenant, token: str, created: bool) -> Plan:
    files = archive.tenant_files_dir(settings, tenant.uid)
    if tenant.backend is Backend.SQLITE:
        live = sqlite_path(settings, tenant.database_name)
        db_live, db_staged, db_previous = (str(live), f"{live}.restoring-{token}",
                                           f"{live}.pre-restore-{token}")
    else:
        db_live = tenant.database_name
        db_staged = scratch_database(settings, "rst", token)
        db_previous = scratch_database(settings, "pre", token)
    return Plan(token=token, tenant_uid=tenant.uid, backend=tenant.backend.value,
                status_before=tenant.status.value, created=created,
                had_files=files.exists(), files_live=str(files),
                files_incoming=f"{files}.restoring-{token}",
                files_previous=f"{files}.pre-restore-{token}",
                db_live=db_live, db_staged=db_staged, db_previous=db_previous)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def stage_files(plan: Plan, content: Path) -> None:
    incoming = Path(plan.files_incoming)
    incoming.parent.mkdir(parents=True, exist_ok=True)
    source = content / archive.FILES_PREFIX
    if source.is_dir():
        shutil.move(str(source), incoming)
    else:
        incoming.mkdir()


def place_files(plan: Plan) -> None:
    live, incoming = Path(plan.files_live), Path(plan.files_incoming)
    if live.exists():
        os.replace(live, plan.files_previous)
    os.replace(incoming, live)
    _fsync_dir(live.parent)


def _sqlite_sidecars(path: str) -> None:
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def swap_database(plan: Plan, admin: str | None) -> None:
    """The commit point (see the module docstring)."""
    if plan.backend == Backend.SQLITE.value:
        live = Path(plan.db_live)
        import sqlite3

        conn = sqlite3.connect(live)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
        _sqlite_sidecars(plan.db_live)
        os.link(live, plan.db_previous)
        os.replace(plan.db_staged, live)
        _fsync_dir(live.parent)
        return
    assert admin is not None
    with pg.admin_connection(admin) as conn, conn.cursor() as cur:
        for name in (plan.db_live, plan.db_staged):
            cur.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(ident(name)))
            cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
    _renames(admin, [(plan.db_live, plan.db_previous), (plan.db_staged, plan.db_live)])


def _renames(admin: str, pairs: list[tuple[str, str]]) -> None:
    """Rename databases in one transaction; the new live one accepts connections again."""
    conn = psycopg2.connect(pg.libpq_dsn(admin), connect_timeout=10,
                            application_name="qalitel-admin")
    try:
        with conn.cursor() as cur:
            for old, new in pairs:
                cur.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(ident(old),
                                                                             ident(new)))
            cur.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(
                ident(pairs[-1][1])))
        conn.commit()
    finally:
        conn.close()


def _pg_exists(admin: str, name: str) -> bool:
    with pg.admin_connection(admin) as conn:
        return pg.database_exists(conn, name)


def _pg_drop(admin: str, name: str) -> None:
    with pg.admin_connection(admin) as conn, conn.cursor() as cur:
        cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident(name)))


def committed(plan: Plan, admin: str | None) -> bool:
    """Whether the database swap happened (the restored database is the tenant's)."""
    if plan.committed:
        return True
    if plan.backend == Backend.SQLITE.value:
        previous, live = Path(plan.db_previous), Path(plan.db_live)
        return previous.exists() and live.exists() and not os.path.samefile(previous, live)
    assert admin is not None
    return _pg_exists(admin, plan.db_previous)


def roll_back(plan: Plan, admin: str | None) -> list[str]:
    """Put the tenant's previous database and files back and remove what the restore
    staged; whatever step it stopped at. Returns what was done."""
    done: list[str] = []
    sqlite = plan.backend == Backend.SQLITE.value
    if committed(plan, admin) and not plan.committed:
        if sqlite:
            _sqlite_sidecars(plan.db_live)
            os.replace(plan.db_previous, plan.db_live)
        else:
            assert admin is not None
            with pg.admin_connection(admin) as conn, conn.cursor() as cur:
                cur.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(
                    ident(plan.db_live)))
                cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = %s AND pid <> pg_backend_pid()", (plan.db_live,))
            _renames(admin, [(plan.db_live, plan.db_staged), (plan.db_previous, plan.db_live)])
        done.append(f"database:{plan.db_live} put back")
    if sqlite:
        for name in (plan.db_staged, plan.db_previous):
            path = Path(name)
            if path.exists() and (name == plan.db_staged
                                  or os.path.samefile(path, plan.db_live)):
                path.unlink()
                _sqlite_sidecars(name)
                done.append(f"file:{path.name}")
    else:
        assert admin is not None
        if _pg_exists(admin, plan.db_staged):
            _pg_drop(admin, plan.db_staged)
            done.append(f"database:{plan.db_staged}")
        if _pg_exists(admin, plan.db_live):
            with pg.admin_connection(admin) as conn, conn.cursor() as cur:
                cur.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(
                    ident(plan.db_live)))
    live, previous = Path(plan.files_live), Path(plan.files_previous)
    incoming = Path(plan.files_incoming)
    if incoming.exists():
        shutil.rmtree(incoming)
        done.append(f"folder:{incoming.name}")
    if previous.exists():
        if live.exists():
            shutil.rmtree(live)
        os.replace(previous, live)
        done.append(f"folder:{live.name} put back")
    elif not plan.had_files and live.exists():
        shutil.rmtree(live)
    return done


def roll_forward(plan: Plan, admin: str | None) -> list[str]:
    """The restored database is in place and checked: drop what it replaced."""
    done: list[str] = []
    if plan.backend == Backend.SQLITE.value:
        previous = Path(plan.db_previous)
        if previous.exists():
            previous.unlink()
            done.append(f"file:{previous.name}")
    else:
        assert admin is not None
        if _pg_exists(admin, plan.db_previous):
            _pg_drop(admin, plan.db_previous)
            done.append(f"database:{plan.db_previous}")
    for name in (plan.files_previous, plan.files_incoming):
        if Path(name).exists():
            shutil.rmtree(name)
            done.append(f"folder:{Path(name).name}")
    return done
