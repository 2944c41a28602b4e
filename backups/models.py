"""The backup catalogue: one row per archive, one per copy of it on a target.

Rows name the tenant by uid and slug, not by foreign key: the catalogue outlives the tenant
(its copies must still be found and deleted after the tenant is gone).
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import db, value_enum


class BackupStatus(enum.StrEnum):
    RUNNING = "running"  # started; its process may have died (a later run resumes it)
    COMPLETE = "complete"  # a good copy on every target configured when it ran
    PARTIAL = "partial"  # a good copy on some targets only
    FAILED = "failed"  # no copy anywhere
    PRUNING = "pruning"  # past the window, a prune failed on some copies: the next one retries
    PRUNED = "pruned"  # past the retention window: its copies were deleted from every target


class CopyStatus(enum.StrEnum):
    OK = "ok"
    FAILED = "failed"
    PRUNED = "pruned"


class Backup(db.Model):
    __tablename__ = "backups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_uid: Mapped[str] = mapped_column(String(36), nullable=False, index=True)
    tenant_slug: Mapped[str] = mapped_column(String(40), nullable=False)
    backend: Mapped[str] = mapped_column(String(20), nullable=False)
    status: Mapped[BackupStatus] = mapped_column(value_enum(BackupStatus), nullable=False,
                                                 default=BackupStatus.RUNNING)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    schema_revision: Mapped[str | None] = mapped_column(String(64))
    key: Mapped[str | None] = mapped_column(String(255))
    size: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    deep_verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    deep_result: Mapped[str | None] = mapped_column(Text)
    pruned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    copies: Mapped[list[BackupCopy]] = relationship(
        back_populates="backup", cascade="all, delete-orphan", order_by="BackupCopy.id")


class BackupCopy(db.Model):
    __tablename__ = "backup_copies"
    __table_args__ = (UniqueConstraint("backup_id", "target"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    backup_id: Mapped[int] = mapped_column(ForeignKey("backups.id", ondelete="CASCADE"),
                                           nullable=False, index=True)
    target: Mapped[str] = mapped_column(String(1000), nullable=False)
    status: Mapped[CopyStatus] = mapped_column(value_enum(CopyStatus), nullable=False)
    error: Mapped[str | None] = mapped_column(Text)
    written_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    check_result: Mapped[str | None] = mapped_column(String(200))
    pruned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    backup: Mapped[Backup] = relationship(back_populates="copies")
