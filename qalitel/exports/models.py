"""``data_exports``: one row per background export (a tenant's full archive, a user's
personal data), in the platform database. The tenant is named by uid, not foreign key: the
row and its file outlive nothing of the tenant's, and are deleted by expiry."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import db, value_enum


class ExportState(enum.StrEnum):
    PENDING = "pending"  # requested; a worker will claim it
    RUNNING = "running"  # claimed (re-claimable once its worker is presumed dead)
    READY = "ready"  # built; its link was mailed
    FAILED = "failed"  # its error is shown; the requester may retry
    EXPIRED = "expired"  # past its 7 days: the file is deleted


ACTIVE_STATES = (ExportState.PENDING, ExportState.RUNNING)


class DataExport(db.Model):
    __tablename__ = "data_exports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: SHA-256 of the download token (the token itself is only in the mailed link).
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    tenant_uid: Mapped[str] = mapped_column(String(36), nullable=False, index=True)
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    subject_user_id: Mapped[int] = mapped_column(Integer, nullable=False)
    state: Mapped[ExportState] = mapped_column(value_enum(ExportState), nullable=False,
                                               default=ExportState.PENDING)
    #: Set while pending or running, NULL after: the unique index allows one active export
    #: per tenant (kind 'tenant') or per user (other kinds), whatever the race.
    active_key: Mapped[str | None] = mapped_column(String(120), unique=True)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    file_path: Mapped[str | None] = mapped_column(String(1000))
    file_size: Mapped[int | None] = mapped_column(BigInteger)
    file_sha256: Mapped[str | None] = mapped_column(String(64))
