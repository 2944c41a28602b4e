"""The end of a tenant's databases: destruction, and the sweep of what crashed provisionings
left behind."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg2
from flask import current_app
from sqlalchemy import make_url, select

from core import clock
from core.config import Settings
from core.db import db
from core.filestore import remove_tenant_files, tenant_files_dir
from tenants import hooks, pg
from tenants.engines import sqlite_path
from tenants.provision_pg import drop_pg
from tenants.provision_sqlite import remove_database_files
from tenants.registry import Backend, DatabaseServer, ProvisioningError, Tenant, TenantStatus
from tenants.servers import server_url

#: Maintenance grant roles are ``<prefix>m_<random>`` (maintenance.grants): never a
#: tenant's name (slugs have no ``_``), never swept as an orphan.
GRANT_ROLE_INFIX = "m_"
#: Scratch databases of restores and deep verifications are ``<prefix>bk_<kind>_<token>``
#: (backups.journal): never a tenant's name; the backups sweep settles them, not this one.
BACKUP_SCRATCH_INFIX = "bk_"


@dataclass(frozen=True)
class Dropped:
    """What :func:`drop_tenant_data` removed: the database (PostgreSQL name on ``server``, or
    the SQLite file), the tenant's role, and its files folder with how many files it held."""

    database: str
    server: str | None
    role: str | None
    files_folder: str
    files: int


def server_place(settings: Settings, tenant: Tenant) -> str | None:
    """The tenant's PostgreSQL server as a deletion record names it: ``name (host:port)``."""
    if tenant.server is None:
        return None
    parts = make_url(server_url(settings, tenant.server))
    return f"{tenant.server.name} ({parts.host or 'local'}:{parts.port or 5432})"


def drop_tenant_data(settings: Settings, tenant: Tenant) -> Dropped:
    """Drop a closed tenant's database (and role) and files; its registry row stays.

    The ``before_destroy`` hooks of the layers above (``tenants.hooks``) run first, before
    anything irreversible: a hook that raises leaves the database in place. Idempotent: what
    is already gone is skipped.
    """
    if tenant.status is not TenantStatus.CLOSED:
        raise ProvisioningError(f"tenant {tenant.slug} is {tenant.status.value}: only a closed "
                                "tenant's data is dropped")
    cache = current_app.extensions.get("qalitel_engines")
    if cache is not None:
        cache.invalidate(tenant.uid)
    folder = tenant_files_dir(settings, tenant.uid)
    files = sum(1 for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0
    hooks.run_before_destroy(settings, tenant)
    server = None
    if tenant.backend is Backend.POSTGRESQL and tenant.server is not None:
        url = server_url(settings, tenant.server)
        drop_pg(url, tenant.database_name, tenant.role_name)
        server = server_place(settings, tenant)
        database = tenant.database_name
    else:
        path = sqlite_path(settings, tenant.database_name)
        remove_database_files(path)
        database = str(path)
    remove_tenant_files(settings, tenant.uid)
    return Dropped(database, server, tenant.role_name, str(folder), files)


def destroy_tenant(settings: Settings, tenant: Tenant) -> None:
    """Drop a tenant's database (and role), its files and its registry row. Irreversible.

    The tenant is closed first (committed): requests stop resolving. Then
    :func:`drop_tenant_data`, and the row is deleted.
    """
    tenant.status = TenantStatus.CLOSED
    db.session.commit()
    drop_tenant_data(settings, tenant)
    db.session.delete(tenant)
    db.session.commit()


def sweep(settings: Settings, *, older_than_s: float = 600.0) -> list[str]:
    """Remove what crashed provisionings left: stale ``provisioning`` rows and their databases,
    and databases, roles or files of this platform's naming that no registry row claims."""
    removed: list[str] = []
    cutoff = datetime.now(UTC) - timedelta(seconds=older_than_s)
    for tenant in db.session.execute(
            select(Tenant).where(Tenant.status == TenantStatus.PROVISIONING)).scalars().all():
        if clock.as_utc(tenant.created_at) <= cutoff:
            removed.append(f"registry:{tenant.slug}")
            destroy_tenant(settings, tenant)
    claimed = {t.database_name for t in db.session.execute(select(Tenant)).scalars()}
    claimed.add(settings.template_database)  # its name may well start with the prefix
    removed += _sweep_files(settings, claimed, older_than_s)
    prefix = settings.pg_name_prefix
    for server in db.session.execute(select(DatabaseServer)).scalars():
        url = server_url(settings, server)
        try:
            with pg.admin_connection(url) as conn, conn.cursor() as cur:
                cur.execute("SELECT datname FROM pg_database WHERE starts_with(datname, %s)",
                            (prefix,))
                databases = [r[0] for r in cur.fetchall()]
                cur.execute("SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s)",
                            (prefix,))
                roles = [r[0] for r in cur.fetchall()]
        except psycopg2.OperationalError as exc:
            raise ProvisioningError(f"cannot reach database server {server.name!r} "
                                    f"(swept so far: {', '.join(removed) or 'nothing'}): "
                                    f"{str(exc).strip()}") from exc
        for name in databases:
            if name not in claimed and not name.startswith(prefix + BACKUP_SCRATCH_INFIX):
                drop_pg(url, name, None)
                removed.append(f"database:{name}")
        for name in roles:
            if name not in claimed and not name.startswith(prefix + GRANT_ROLE_INFIX):
                drop_pg(url, None, name)
                removed.append(f"role:{name}")
    return removed


def _sweep_files(settings: Settings, claimed: set[str], older_than_s: float) -> list[str]:
    """SQLite files: stale work files of provisionings, and database files nobody claims."""
    removed: list[str] = []
    folder = settings.sqlite_tenant_dir
    if not folder.exists():
        return removed
    for path in folder.iterdir():
        base = re.sub(r"-(wal|shm|journal)$", "", path.name)
        stale_work = (base.endswith(".provisioning")
                      and time.time() - path.stat().st_mtime > older_than_s)
        orphan = base.endswith(".sqlite3") and not base.startswith(".") and base not in claimed
        if stale_work or orphan:
            path.unlink(missing_ok=True)
            removed.append(f"file:{path.name}")
    return removed
