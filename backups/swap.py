"""Moving a restored database and files into a tenant's place, and settling a swap that
stopped midway, by what is on disk and on the server (the same steps serve the restore
that fails and the sweep after a restore that was killed).

The commit point is one atomic step. PostgreSQL renames the live database aside and the
staged one into its name in one transaction. SQLite swaps by *content*, never by file: the
live file's content is first copied aside (``….pre-restore-…``), then the staged file's is
copied into the live file in one step of SQLite's backup API, one write transaction under
SQLite's own locking. Other processes' connections to the live file (a web worker's pool)
see the restored data at their next transaction, and a copy killed midway is rolled back by
SQLite (its WAL frames were never committed). The staged file carries a marker
(``user_version``) into the live one, which tells a swap that committed from one that did
not. So the tenant always has a database: the old one until the commit point, the restored
one after it. The files are swapped just before it.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from contextlib import closing
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


def _marker(token: str) -> int:
    """The ``user_version`` a restore's staged SQLite file carries into the live one."""
    return int(token[:7], 16) | 1


def _sqlite(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


def _user_version(path: str) -> int:
    with closing(_sqlite(path)) as conn:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _marked(plan: Plan) -> bool:
    """Whether the live SQLite file holds the content the restore staged."""
    live = plan.db_live
    return Path(live).exists() and _user_version(live) == _marker(plan.token)


def _copy_content(source: str, target: str) -> None:
    """Copy a SQLite database's content into ``target`` (made if missing) in one step of
    the backup API: one write transaction of ``target``, waiting for its other writers;
    connections open on it see the new content at their next transaction."""
    with closing(_sqlite(source)) as reader, closing(_sqlite(target)) as writer:
        reader.backup(writer)


def match_page_size(staged: str, live: str) -> None:
    """Give a staged SQLite file the live one's page size (the backup API cannot copy into
    a WAL database of another page size)."""
    with closing(_sqlite(live)) as conn:
        size = int(conn.execute("PRAGMA page_size").fetchone()[0])
    with closing(_sqlite(staged)) as conn:
        if int(conn.execute("PRAGMA page_size").fetchone()[0]) != size:
            conn.execute("PRAGMA journal_mode=DELETE")
            conn.execute(f"PRAGMA page_size={size}")
            conn.execute("VACUUM")


def _remove_sqlite(path: str) -> bool:
    """Remove one of the restore's own SQLite files (never the live one) and its sidecars;
    whether it existed."""
    existed = Path(path).exists()
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return existed


def swap_database(plan: Plan, admin: str | None) -> None:
    """The commit point (see the module docstring)."""
    if plan.backend == Backend.SQLITE.value:
        _remove_sqlite(plan.db_previous)
        _copy_content(plan.db_live, plan.db_previous)
        _fsync_dir(Path(plan.db_live).parent)
        with closing(_sqlite(plan.db_staged)) as conn:
            conn.execute(f"PRAGMA user_version={_marker(plan.token)}")
        _copy_content(plan.db_staged, plan.db_live)
        return
    assert admin is not None
    with pg.admin_connection(admin) as conn, conn.cursor() as cur:
        for name in (plan.db_live, plan.db_staged):
            cur.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(ident(name)))
            cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
    _renames(admin, [(plan.db_live, plan.db_previous), (plan.db_staged, plan.db_live)])


def cut_off(plan: Plan, admin: str | None) -> None:
    """End what is still connected to a PostgreSQL tenant's live database once it is
    suspended (requests that began before): a transaction in flight fails instead of
    committing into the database the restore replaces."""
    if plan.backend == Backend.SQLITE.value:
        return
    assert admin is not None
    with pg.admin_connection(admin) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()", (plan.db_live,))


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
        return _marked(plan)
    assert admin is not None
    return _pg_exists(admin, plan.db_previous)


def roll_back(plan: Plan, admin: str | None) -> list[str]:
    """Put the tenant's previous database and files back and remove what the restore
    staged; whatever step it stopped at. Returns what was done."""
    done: list[str] = []
    sqlite = plan.backend == Backend.SQLITE.value
    if committed(plan, admin) and not plan.committed:
        if sqlite:
            _copy_content(plan.db_previous, plan.db_live)
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
            if _remove_sqlite(name):
                done.append(f"file:{Path(name).name}")
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
    """The restored database is in place and checked (the journal says so): drop what it
    replaced."""
    done: list[str] = []
    if plan.backend == Backend.SQLITE.value:
        for name in (plan.db_previous, plan.db_staged):
            if _remove_sqlite(name):
                done.append(f"file:{Path(name).name}")
        if _marked(plan):  # the journal says committed: the marker has done its work
            with closing(_sqlite(plan.db_live)) as conn:
                conn.execute("PRAGMA user_version=0")
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
