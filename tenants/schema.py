"""Base of every tenant-database model, and the identity row each tenant database holds."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, Integer, MetaData, String, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class TenantBase(DeclarativeBase):
    """Declarative base of tenant databases; only ``tenants.context.tdb`` binds it."""

    metadata = MetaData(naming_convention=NAMING)


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
