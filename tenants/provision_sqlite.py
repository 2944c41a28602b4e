"""SQLite steps of provisioning: a copy of the template file under a work name, identity and
first rows written in one transaction, one fsync, then the file published under its name."""

from __future__ import annotations

import os
import secrets
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

from core.config import Settings
from tenants.engines import harden_sqlite, sqlite_path
from tenants.hooks import Row
from tenants.registry import ProvisioningError, Tenant
from tenants.rows import SQLITE_DIALECT, insert_row
from tenants.templates import ensure_sqlite_template

SIDE_FILES = ("", "-wal", "-shm", "-journal")


def remove_database_files(path: Path) -> None:
    for suffix in SIDE_FILES:
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def create_sqlite(settings: Settings, tenant: Tenant, rows: list[Row],
                  step: Callable[[str], None], undo: list[Callable[[], None]]) -> None:
    template = ensure_sqlite_template(settings)
    step("template")
    step("role")
    final = sqlite_path(settings, tenant.database_name)
    work = final.with_name(f".{final.name}.{secrets.token_hex(4)}.provisioning")
    undo.append(lambda: remove_database_files(work))
    shutil.copyfile(template, work)
    step("database")
    step("privileges")
    conn = sqlite3.connect(work)
    try:
        harden_sqlite(conn, wal=False)
        # Nobody else opens a work file and a failure discards it: no journal on disk and no
        # fsync per commit, one fsync below before it is published.
        conn.execute("PRAGMA journal_mode=MEMORY")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("INSERT INTO tenant_identity (id, slug, tenant_uid) VALUES (1, ?, ?)",
                     (tenant.slug, tenant.uid))
        step("identity")
        cursor = conn.cursor()
        for table, values in rows:
            insert_row(cursor, table, values, SQLITE_DIALECT)
        conn.commit()
    finally:
        conn.close()
    with open(work, "rb+") as handle:
        os.fsync(handle.fileno())
    try:
        os.link(work, final)
    except FileExistsError:
        raise ProvisioningError(
            f"a database file for {tenant.slug!r} already exists; "
            "run `qalitel tenants sweep`") from None
    undo.append(lambda: final.unlink(missing_ok=True))
    work.unlink()
