"""The proof of deletion a departed tenant leaves in the platform database.

One :class:`DeletionRecord` per closed tenant, written as its data goes (``qalitel.closure``):
its live database, role and files when dropped, each backup copy as its window ends, and the
purge once nothing is left. It names the tenant by uid and slug (it outlives nothing else, but
reads like the catalogue) and what was removed — names, places, counts, SHA-256 values —
never client data: no record titles, no user names or e-mail addresses.

It lives in the tenancy core so that the staff console (maintenance) can list closures.
"""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import BigInteger, Date, DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import db, value_enum


class ItemKind(enum.StrEnum):
    DATABASE = "database"  # a PostgreSQL database (name, server) or a SQLite file
    ROLE = "role"  # the tenant's own PostgreSQL login role
    GRANT_ROLE = "grant-role"  # a maintenance grant's PostgreSQL role
    FILES = "files"  # the tenant's attached-files folder (count)
    ACCESS_LOG = "access-log"  # the maintenance access log (entry count, last hash)
    BACKUP_COPY = "backup-copy"  # one archive on one target (key, SHA-256, size)
    TARGET_FOLDER = "target-folder"  # the tenant's folder on a folder target
    EXPORT = "export"  # an export file of the tenant: the closure's, the app's, the CLI's


class DeletionRecord(db.Model):
    __tablename__ = "deletion_records"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_uid: Mapped[str] = mapped_column(String(36), unique=True, nullable=False)
    tenant_slug: Mapped[str] = mapped_column(String(40), nullable=False)
    backend: Mapped[str] = mapped_column(String(20), nullable=False)
    closed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    purge_due_at: Mapped[date] = mapped_column(Date, nullable=False)
    dropped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    backups_expired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    purged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    items: Mapped[list[DeletionItem]] = relationship(
        back_populates="record", cascade="all, delete-orphan", order_by="DeletionItem.id")


class DeletionItem(db.Model):
    """One thing removed: what (``kind``, ``name``), where (``place``: server or target),
    its fingerprint (``sha256``, ``size``, ``count``), when and by which job or command."""

    __tablename__ = "deletion_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    record_id: Mapped[int] = mapped_column(
        ForeignKey("deletion_records.id", ondelete="CASCADE"), nullable=False, index=True)
    kind: Mapped[ItemKind] = mapped_column(value_enum(ItemKind), nullable=False)
    name: Mapped[str] = mapped_column(String(1000), nullable=False)
    place: Mapped[str | None] = mapped_column(String(1000))
    sha256: Mapped[str | None] = mapped_column(String(64))
    size: Mapped[int | None] = mapped_column(BigInteger)
    count: Mapped[int | None] = mapped_column(Integer)
    removed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    removed_by: Mapped[str] = mapped_column(String(100), nullable=False)

    record: Mapped[DeletionRecord] = relationship(back_populates="items")
