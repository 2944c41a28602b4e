"""Tenant rows of the user's rights: the login history and the erasure requests.

Login events keep the client address *truncated* (IPv4 to its /24, IPv6 to its /64): enough
for a user to recognise a network (office, home, an unknown country) and for an admin to
spot a burst of failures, without pinning one device; the user agent is cut to
:data:`AGENT_MAX` characters.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, Integer, String, func
from sqlalchemy.orm import Mapped, mapped_column

from core.db import value_enum
from tenants.schema import TenantBase

AGENT_MAX = 200
ADDRESS_MAX = 64
REASON_MAX = 1000


class LoginOutcome(enum.StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"


class ErasureState(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REFUSED = "refused"


class LoginEvent(TenantBase):
    """One sign-in attempt on a known account."""

    __tablename__ = "login_events"
    __table_args__ = (Index("ix_login_events_user_id_at", "user_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         nullable=False)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(),
                                         nullable=False, index=True)
    outcome: Mapped[LoginOutcome] = mapped_column(value_enum(LoginOutcome), nullable=False)
    address: Mapped[str | None] = mapped_column(String(ADDRESS_MAX))
    user_agent: Mapped[str | None] = mapped_column(String(AGENT_MAX))


class ErasureRequest(TenantBase):
    """A user's request to be erased, and the admin's decision. After approval the row keeps
    the tombstone's id (the person's pseudonym row), so the decision stays on record."""

    __tablename__ = "erasure_requests"
    __table_args__ = (
        CheckConstraint("(state = 'pending') = (decided_at IS NULL)", name="decided"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         nullable=False, index=True)
    requested_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False)
    state: Mapped[ErasureState] = mapped_column(value_enum(ErasureState), nullable=False,
                                                default=ErasureState.PENDING)
    decided_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str] = mapped_column(String(REASON_MAX), nullable=False, default="",
                                        server_default="")
