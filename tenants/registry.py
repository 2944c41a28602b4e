"""Platform-database models of tenancy: tenants, database servers, migration ledger."""

from __future__ import annotations

import enum
import re
import uuid
from datetime import UTC, date, datetime

from sqlalchemy import Date, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import db, value_enum

SLUG_RE = re.compile(r"^[a-z][a-z0-9-]{1,39}$")
RESERVED_SLUGS = frozenset({
    "www", "staff", "admin", "api", "static", "app", "apps", "t", "login", "logout",
    "healthz", "health", "status", "mail", "smtp", "ftp", "root", "postgres", "template",
    "template0", "template1", "qalitel", "scoqi", "support", "help", "docs", "assets",
    "cdn", "maintenance", "system", "public", "default", "test", "demo-template",
})


class InvalidSlugError(ValueError):
    pass


class ProvisioningError(RuntimeError):
    """Provisioning (or its clean-up) failed; nothing it created is left behind."""


def validate_slug(slug: object) -> str:
    """Return ``slug`` if it is an acceptable tenant slug, else raise InvalidSlugError."""
    if not isinstance(slug, str) or not SLUG_RE.fullmatch(slug):
        shown = repr(slug)[:60]
        raise InvalidSlugError(
            f"invalid slug {shown}: 2 to 40 characters, lowercase letters, digits and '-', "
            "starting with a letter")
    if slug in RESERVED_SLUGS or slug.endswith("-") or "--" in slug:
        raise InvalidSlugError(f"slug {slug!r} is reserved or malformed")
    return slug


def utcnow() -> datetime:
    return datetime.now(UTC)


class TenantStatus(enum.StrEnum):
    PROVISIONING = "provisioning"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    CLOSED = "closed"


LIVE_STATUSES = (TenantStatus.ACTIVE, TenantStatus.SUSPENDED)
"""A live tenant: its database exists and is kept (backed up, migrated, swept)."""


class Backend(enum.StrEnum):
    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"


class DatabaseServer(db.Model):
    """A PostgreSQL server tenants can be placed on; its admin DSN is encrypted at rest."""

    __tablename__ = "database_servers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    url_encrypted: Mapped[str] = mapped_column(Text, nullable=False)
    template_revision: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Tenant(db.Model):
    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(36), unique=True, nullable=False,
                                     default=lambda: str(uuid.uuid4()))
    slug: Mapped[str] = mapped_column(String(40), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    status: Mapped[TenantStatus] = mapped_column(
        value_enum(TenantStatus),
        nullable=False, default=TenantStatus.PROVISIONING)
    backend: Mapped[Backend] = mapped_column(
        value_enum(Backend), nullable=False)
    server_id: Mapped[int | None] = mapped_column(ForeignKey("database_servers.id"))
    database_name: Mapped[str] = mapped_column(String(255), nullable=False)
    role_name: Mapped[str | None] = mapped_column(String(63))
    role_password_encrypted: Mapped[str | None] = mapped_column(Text)
    schema_revision: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow,
                                                 onupdate=utcnow)
    # A client leaving (qalitel.closure): the row stays, the data goes.
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closure_reason: Mapped[str | None] = mapped_column(Text)
    #: What a reopen restores (active or suspended).
    status_before_closure: Mapped[TenantStatus | None] = mapped_column(value_enum(TenantStatus))
    grace_ends_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    dropped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    purge_due_at: Mapped[date | None] = mapped_column(Date)
    purged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    server: Mapped[DatabaseServer | None] = relationship()

    def __repr__(self) -> str:
        return f"<Tenant {self.slug} {self.status.value} {self.backend.value}>"


class MigrationState(enum.StrEnum):
    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"


class MigrationLedger(db.Model):
    """One row per database per migration run: the template or a tenant."""

    __tablename__ = "migration_ledger"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[str] = mapped_column(String(36), nullable=False, index=True)
    tenant_id: Mapped[int | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    target: Mapped[str] = mapped_column(String(100), nullable=False)
    from_revision: Mapped[str | None] = mapped_column(String(64))
    to_revision: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[MigrationState] = mapped_column(
        value_enum(MigrationState), nullable=False)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[float | None] = mapped_column()
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
