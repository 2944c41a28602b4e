"""The PostgreSQL servers tenants are placed on: registration (admin DSN encrypted at rest),
look-up, and the choice of a server for a new tenant."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from core.config import Settings, normalize_database_url
from core.crypto import decrypt, encrypt
from core.db import db
from tenants import pg
from tenants.registry import Backend, DatabaseServer, ProvisioningError


def server_for_new_tenant(settings: Settings, backend: str | None,
                          server_name: str | None) -> DatabaseServer | None:
    """The PostgreSQL server a new tenant goes to, or None for SQLite."""
    if backend == Backend.SQLITE.value:
        return None
    if server_name:
        server = db.session.execute(
            select(DatabaseServer).where(DatabaseServer.name == server_name)).scalar_one_or_none()
        if server is None:
            raise ProvisioningError(f"no database server named {server_name!r}")
        return server
    if settings.tenant_server_url:
        return ensure_server(settings, "default", settings.tenant_server_url)
    first = select(DatabaseServer).order_by(DatabaseServer.id)
    server = db.session.execute(first).scalars().first()
    if server is None and backend == Backend.POSTGRESQL.value:
        raise ProvisioningError("no PostgreSQL server configured (QALITEL_TENANT_SERVER_URL "
                                "or `qalitel servers add`)")
    return server


def ensure_server(settings: Settings, name: str, url: str) -> DatabaseServer:
    """Register (or update) a PostgreSQL server by name; ``url`` as an operator writes it."""
    url = normalize_database_url(url)
    pg.libpq_dsn(url)
    server = db.session.execute(
        select(DatabaseServer).where(DatabaseServer.name == name)).scalar_one_or_none()
    if server is None:
        server = DatabaseServer(name=name, url_encrypted=encrypt(settings.encryption_key, url))
        db.session.add(server)
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            return ensure_server(settings, name, url)
    elif decrypt(settings.encryption_key, server.url_encrypted) != url:
        server.url_encrypted = encrypt(settings.encryption_key, url)
        server.template_revision = None
        db.session.commit()
    return server


def server_url(settings: Settings, server: DatabaseServer) -> str:
    """The server's admin URL, with an explicit driver (rows written before URLs were
    normalised included)."""
    return normalize_database_url(decrypt(settings.encryption_key, server.url_encrypted))
