"""The identity row each tenant database holds (``TenantBase`` is re-exported from ``core.db``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, Integer, String, func
from sqlalchemy.orm import Mapped, mapped_column

from core.db import TenantBase


class TenantIdentity(TenantBase):
    """The single row naming the tenant a database belongs to.

    Empty in the template; written at provisioning. A tenant engine refuses to serve a
    database whose identity does not match the registry.
    """

    __tablename__ = "tenant_identity"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, default=1)
    slug: Mapped[str] = mapped_column(String(40), nullable=False)
    tenant_uid: Mapped[str] = mapped_column(String(36), nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False)
