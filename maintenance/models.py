"""Platform-database models of maintenance access: staff, requests, grants, the access log."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import db, value_enum
from tenants.registry import Tenant, utcnow


class Scope(enum.StrEnum):
    READ = "read"
    READ_WRITE = "read-write"


class RequestStatus(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    EXPIRED = "expired"


class GrantStatus(enum.StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


class StaffUser(db.Model):
    """A SCOQI engineer. Password and TOTP both required at the console."""

    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    totp_secret_encrypted: Mapped[str] = mapped_column(Text, nullable=False)
    session_token: Mapped[str] = mapped_column(String(64), nullable=False)
    active: Mapped[bool] = mapped_column(default=True, nullable=False)
    last_totp_step: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class MaintenanceRequest(db.Model):
    __tablename__ = "maintenance_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(36), unique=True, nullable=False,
                                           default=lambda: str(uuid.uuid4()))
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"),
                                           index=True, nullable=False)
    engineer_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"), nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    ticket: Mapped[str | None] = mapped_column(String(100))
    scope: Mapped[Scope] = mapped_column(value_enum(Scope), nullable=False)
    hours: Mapped[float] = mapped_column(nullable=False)
    status: Mapped[RequestStatus] = mapped_column(value_enum(RequestStatus), nullable=False,
                                                  default=RequestStatus.PENDING)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    pending_until: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decided_by_user_id: Mapped[int | None] = mapped_column(Integer)
    decided_by_name: Mapped[str | None] = mapped_column(String(200))
    decided_by_email: Mapped[str | None] = mapped_column(String(254))
    decision_comment: Mapped[str | None] = mapped_column(Text)

    tenant: Mapped[Tenant] = relationship()
    engineer: Mapped[StaffUser] = relationship()
    grant: Mapped[Grant | None] = relationship(back_populates="request", uselist=False)


class Grant(db.Model):
    """An approved window. On PostgreSQL it has a login role of its own."""

    __tablename__ = "maintenance_grants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("maintenance_requests.id", ondelete="CASCADE"), unique=True, nullable=False)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"),
                                           index=True, nullable=False)
    engineer_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"), nullable=False)
    scope: Mapped[Scope] = mapped_column(value_enum(Scope), nullable=False)
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    status: Mapped[GrantStatus] = mapped_column(value_enum(GrantStatus), nullable=False,
                                                default=GrantStatus.ACTIVE)
    role_name: Mapped[str | None] = mapped_column(String(63))
    role_password_encrypted: Mapped[str | None] = mapped_column(Text)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_by_name: Mapped[str | None] = mapped_column(String(200))
    revoked_by_email: Mapped[str | None] = mapped_column(String(254))

    request: Mapped[MaintenanceRequest] = relationship(back_populates="grant")
    tenant: Mapped[Tenant] = relationship()
    engineer: Mapped[StaffUser] = relationship()


class AccessLogEntry(db.Model):
    """One event of a tenant's append-only, hash-chained access log.

    ``hash`` = SHA-256 over the canonical JSON of every other field plus ``prev_hash``;
    ``seq`` numbers a tenant's entries from 1 without gaps.
    """

    __tablename__ = "access_log"
    __table_args__ = (UniqueConstraint("tenant_id", "seq", name="uq_access_log_tenant_seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"),
                                           nullable=False)
    seq: Mapped[int] = mapped_column(Integer, nullable=False)
    at: Mapped[str] = mapped_column(String(40), nullable=False)
    event: Mapped[str] = mapped_column(String(40), nullable=False)
    actor_kind: Mapped[str] = mapped_column(String(20), nullable=False)
    actor_name: Mapped[str] = mapped_column(String(200), nullable=False)
    actor_email: Mapped[str | None] = mapped_column(String(254))
    request_public_id: Mapped[str | None] = mapped_column(String(36))
    detail: Mapped[dict] = mapped_column(JSON, nullable=False, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)


class AccessLogHead(db.Model):
    """Per-tenant anchor of the access log: how many entries and the last hash, sealed with an
    HMAC under the platform's encryption key (``maintenance.audit``), so dropping the newest
    entries is detected even though the chain alone still verifies."""

    __tablename__ = "access_log_heads"

    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"),
                                           primary_key=True, autoincrement=False)
    entry_count: Mapped[int] = mapped_column(Integer, nullable=False)
    last_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    seal: Mapped[str] = mapped_column(String(64), nullable=False)
    updated_at: Mapped[str] = mapped_column(String(40), nullable=False)


class AccessLogPurge(db.Model):
    """The record a purged tenant's log leaves behind (``maintenance.purge``): the sealed head
    it had, whether its chain verified, when. Append-only (platform revision p0005); kept after
    the tenant's registry row goes, so it names the tenant by ``uid`` and slug, not by id."""

    __tablename__ = "access_log_purges"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_uid: Mapped[str] = mapped_column(String(36), unique=True, nullable=False)
    tenant_slug: Mapped[str] = mapped_column(String(40), nullable=False)
    entry_count: Mapped[int] = mapped_column(Integer, nullable=False)
    last_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    chain_ok: Mapped[bool] = mapped_column(nullable=False)
    purged_at: Mapped[str] = mapped_column(String(40), nullable=False)
    seal: Mapped[str] = mapped_column(String(64), nullable=False)
