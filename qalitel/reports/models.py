"""The tenant's branding: one row holding the logo its reports carry.

The logo lives in the tenant database (a few hundred kilobytes at most), so backups,
exports and imports carry it with the rest of the tenant's data.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, Integer, LargeBinary, String, func
from sqlalchemy.orm import Mapped, mapped_column

from tenants.schema import TenantBase

LOGO_KINDS = ("png", "jpeg")
BRANDING_ID = 1


class Branding(TenantBase):
    """At most one row (``id`` = 1): the logo's bytes and the kind detected from them."""

    __tablename__ = "branding"
    __table_args__ = (
        CheckConstraint(f"id = {BRANDING_ID}", name="single_row"),
        CheckConstraint("logo_kind IN ('png', 'jpeg')", name="logo_kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, default=BRANDING_ID)
    logo: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    logo_kind: Mapped[str] = mapped_column(String(10), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False)
