"""Notification tables of a tenant: the client admin's settings (one row), each user's
preferences, and the record of every mail (its unique key makes each one go at most once)."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    func,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from qalitel.users.models import User
from tenants.schema import TenantBase


class Kind(enum.StrEnum):
    ASSIGNMENT = "assignment"
    DUE_SOON = "due_soon"
    OVERDUE = "overdue"
    DIGEST = "digest"


class Status(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"  # no longer due to its recipient when its turn came (reason kept)


KINDS = tuple(k.value for k in Kind)
STATUSES = tuple(s.value for s in Status)
DUE_SOON_DEFAULT = 3
DUE_SOON_MAX = 60
DIGEST_DEFAULT = 0  # Monday (date.weekday())
ERROR_MAX = 500
SUBJECT_MAX = 300


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _flag() -> Mapped[bool]:
    return mapped_column(Boolean, nullable=False, default=True, server_default=true())


class NotificationSettings(TenantBase):
    """The tenant's timing and switches (a single row; absent means the defaults)."""

    __tablename__ = "notification_settings"
    __table_args__ = (
        CheckConstraint("id = 1", name="single_row"),
        CheckConstraint(f"due_soon_days BETWEEN 1 AND {DUE_SOON_MAX}", name="due_soon_days"),
        CheckConstraint("digest_weekday BETWEEN 0 AND 6", name="digest_weekday"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, default=1)
    due_soon_days: Mapped[int] = mapped_column(Integer, nullable=False,
                                               default=DUE_SOON_DEFAULT)
    digest_weekday: Mapped[int] = mapped_column(Integer, nullable=False,
                                                default=DIGEST_DEFAULT)
    assignment: Mapped[bool] = _flag()
    due_soon: Mapped[bool] = _flag()
    overdue: Mapped[bool] = _flag()
    digest: Mapped[bool] = _flag()
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id",
                                                                 ondelete="SET NULL"))
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class NotificationPreference(TenantBase):
    """One user's switches and due-soon days (None: the tenant's); absent means all on."""

    __tablename__ = "notification_preferences"
    __table_args__ = (
        CheckConstraint(f"due_soon_days BETWEEN 1 AND {DUE_SOON_MAX}", name="due_soon_days"),
    )

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         primary_key=True)
    assignment: Mapped[bool] = _flag()
    due_soon: Mapped[bool] = _flag()
    overdue: Mapped[bool] = _flag()
    digest: Mapped[bool] = _flag()
    due_soon_days: Mapped[int | None] = mapped_column(Integer)


class Notification(TenantBase):
    """One mail: to whom, about what, and how its sending went."""

    __tablename__ = "notifications"
    __table_args__ = (
        CheckConstraint(_in("kind", KINDS), name="kind"),
        CheckConstraint(_in("status", STATUSES), name="status"),
        Index("ix_notifications_status_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True, nullable=False)
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"),
                                                index=True)
    object_type: Mapped[str | None] = mapped_column(String(10))  # "action", "record"
    object_id: Mapped[int | None] = mapped_column(Integer)
    subject: Mapped[str] = mapped_column(String(SUBJECT_MAX), nullable=False, default="",
                                         server_default="")
    status: Mapped[str] = mapped_column(String(10), nullable=False, default=Status.PENDING)
    error: Mapped[str | None] = mapped_column(String(ERROR_MAX))
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0,
                                          server_default="0")
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False)
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    user: Mapped[User | None] = relationship()
