"""One consistent copy of a tenant database, with the row count of each of its tables.

PostgreSQL: ``pg_dump --format=custom`` connected as the tenant's own role; the rows are
counted in the dump itself (:mod:`backups.pgarchive`), so the counts describe exactly what
it holds. The password goes through ``PGPASSWORD``, never the command line. SQLite: the
online backup API, counted on the copy.
"""

from __future__ import annotations

import functools
import os
import shutil
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg2
from psycopg2 import sql
from sqlalchemy import URL

from backups.errors import BackupError
from backups.pgarchive import DumpFormatError, check_custom_dump
from core.config import Settings
from tenants.engines import (
    TenantIdentityError,
    TenantInfo,
    check_identity,
    sqlite_path,
    tenant_url,
)
from tenants.pg import libpq_dsn
from tenants.registry import Backend

STDERR_MAX = 600


@dataclass(frozen=True)
class Dump:
    path: Path
    format: str  # "sqlite" or "pg_dump-custom"
    tables: dict[str, int]
    schema_revision: str | None


DEBIAN_VERSIONS = Path("/usr/lib/postgresql")


@functools.lru_cache(maxsize=64)
def _on_path(name: str, server_major: int | None, search: str | None) -> str | None:
    found = shutil.which(name, path=search)
    if found is None or server_major is None or Path(found).resolve().name != "pg_wrapper":
        return found
    direct = DEBIAN_VERSIONS / str(server_major) / "bin" / name
    return str(direct) if os.access(direct, os.X_OK) else found


def pg_tool(settings: Settings, name: str, server_major: int | None = None) -> str:
    """The path of ``pg_dump`` or ``pg_restore``: from ``QALITEL_PG_BIN_DIR``, else ``PATH``.

    When ``PATH`` leads to Debian's ``pg_wrapper`` (a Perl script that picks a version on
    every call, ~30 ms of CPU) and the server's major version is known, the matching
    ``/usr/lib/postgresql/<major>/bin`` binary is called directly, if installed.
    """
    if settings.pg_bin_dir is not None:
        return str(settings.pg_bin_dir / name)
    found = _on_path(name, server_major, os.environ.get("PATH"))
    if found is None:
        raise BackupError(f"{name} not found on PATH: install postgresql-client-15 (Debian) "
                          "or set QALITEL_PG_BIN_DIR")
    return found


def libpq_env(url: URL) -> dict[str, str]:
    """Environment for a libpq tool connecting to ``url`` (no credential on argv)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    parts = {"PGHOST": url.host, "PGPORT": url.port, "PGUSER": url.username,
             "PGPASSWORD": url.password, "PGDATABASE": url.database}
    env.update({key: str(value) for key, value in parts.items() if value not in (None, "")})
    env["PGAPPNAME"] = "qalitel-backup"
    env["PGCONNECT_TIMEOUT"] = "10"
    return env


def run_tool(argv: list[str], env: dict[str, str], what: str) -> None:
    """Run a PostgreSQL client tool; a non-zero exit or a signal is a :class:`BackupError`."""
    try:
        done = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                              check=False)
    except OSError as exc:
        raise BackupError(f"{what}: cannot run {argv[0]}: {exc.strerror}") from exc
    if done.returncode != 0:
        how = (f"killed by signal {-done.returncode}" if done.returncode < 0
               else f"exit status {done.returncode}")
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
        errors = [line for line in lines if "error:" in line or "FATAL" in line]
        detail = " | ".join(errors or lines[-3:])[:STDERR_MAX]
        raise BackupError(f"{what} failed ({how}){': ' + detail if detail else ''}")


def pg_tables(cursor) -> list[str]:
    cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                   "ORDER BY tablename")
    return [row[0] for row in cursor.fetchall()]


def pg_counts(cursor) -> dict[str, int]:
    """Rows of every table, in one statement (one round trip, however many tables)."""
    tables = pg_tables(cursor)
    if not tables:
        return {}
    cursor.execute(sql.SQL(" UNION ALL ").join(
        sql.SQL("SELECT {}, count(*) FROM {}").format(sql.Literal(t), sql.Identifier("public", t))
        for t in tables))
    return {name: int(count) for name, count in cursor.fetchall()}


def sqlite_counts(conn: sqlite3.Connection) -> dict[str, int]:
    names = [row[0] for row in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "ORDER BY name")]
    counts: dict[str, int] = {}
    for table in names:
        quoted = '"{}"'.format(table.replace('"', '""'))
        counts[table] = int(conn.execute(f"SELECT count(*) FROM {quoted}").fetchone()[0])
    return counts


def _revision(cursor) -> str | None:
    cursor.execute("SELECT version_num FROM alembic_version")
    row = cursor.fetchone()
    return row[0] if row else None


def dump_sqlite(info: TenantInfo, settings: Settings, folder: Path) -> Dump:
    source = sqlite_path(settings, info.database_name)
    if not source.is_file():
        raise BackupError(f"database file {source.name} of tenant {info.slug} is missing")
    out = folder / "database.sqlite3"
    reader = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        check_identity(reader, info.uid, info.slug)
        writer = sqlite3.connect(out)
        try:
            reader.backup(writer)
            counts = sqlite_counts(writer)
            revision = _revision(writer.cursor())
        finally:
            writer.close()
    except sqlite3.Error as exc:
        raise BackupError(f"SQLite backup of {info.slug} failed: {exc}") from exc
    except TenantIdentityError as exc:
        raise BackupError(str(exc)) from exc
    finally:
        reader.close()
    return Dump(out, "sqlite", counts, revision)


IDENTITY, REVISION = "tenant_identity", "alembic_version"
MAJOR_TTL = 300.0  # seconds a server's major version is remembered
_majors: dict[tuple[str | None, int | None], tuple[float, int]] = {}


def server_major(settings: Settings, url: URL) -> int | None:
    """The major version of the server at ``url``, when :func:`pg_tool` needs it to skip
    ``pg_wrapper`` (else ``None``, and no connection): asked once per server every
    :data:`MAJOR_TTL` seconds, not once per tenant."""
    if settings.pg_bin_dir is not None or not _behind_wrapper():
        return None
    key, now = (url.host, url.port), time.monotonic()
    known = _majors.get(key)
    if known is not None and now - known[0] < MAJOR_TTL:
        return known[1]
    try:
        conn = psycopg2.connect(libpq_dsn(url), connect_timeout=10,
                                application_name="qalitel-backup")
    except psycopg2.Error:
        return None  # pg_dump itself then says why it cannot connect
    try:
        major = conn.server_version // 10000
    finally:
        conn.close()
    _majors[key] = (now, major)
    return major


def _behind_wrapper() -> bool:
    found = _on_path("pg_dump", None, os.environ.get("PATH"))
    return found is not None and Path(found).resolve().name == "pg_wrapper"


def dump_postgresql(info: TenantInfo, settings: Settings, folder: Path) -> Dump:
    """``pg_dump`` as the tenant's role (its one connection: it takes its own consistent
    snapshot), then :func:`check_custom_dump` of the file, which also gives the row counts,
    the identity row and the schema revision exactly as the dump holds them. A dump of a
    database that does not name this tenant is refused before it is archived."""
    url = tenant_url(info, settings)
    out = folder / "database.pgdump"
    run_tool([pg_tool(settings, "pg_dump", server_major(settings, url)), "--format=custom",
              "--no-password", f"--file={out}"], libpq_env(url), "pg_dump")
    # A dump that is not whole is no dump, whatever pg_dump's exit status said.
    try:
        checked = check_custom_dump(out, keep=frozenset({IDENTITY, REVISION}))
    except DumpFormatError as exc:
        raise BackupError(f"the dump pg_dump wrote is not a whole archive: {exc}") from exc
    counts = {table: rows for (schema, table), rows in checked.rows.items()
              if schema == "public" and table is not None and rows is not None}
    identity = checked.table(IDENTITY) if IDENTITY in checked.kept else []
    if not any((row.get("id"), row.get("tenant_uid"), row.get("slug"))
               == ("1", info.uid, info.slug) for row in identity):
        raise BackupError(f"database does not belong to tenant {info.slug}")
    if len(counts) != len(checked.rows):
        raise BackupError("the dump's rows cannot be counted (compressed with lz4 or zstd?)")
    revisions = checked.table(REVISION) if REVISION in checked.kept else []
    revision = revisions[0].get("version_num") if revisions else None
    return Dump(out, "pg_dump-custom", counts, revision)


def dump_database(info: TenantInfo, settings: Settings, folder: Path) -> Dump:
    if info.backend is Backend.SQLITE:
        return dump_sqlite(info, settings, folder)
    return dump_postgresql(info, settings, folder)
