"""The platform-side erasure ledger: which tenant user was erased, under which pseudonym,
when. No personal data: a restore replays it (:mod:`qalitel.my_data.replay`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db import db


class Erasure(db.Model):
    __tablename__ = "erasures"
    __table_args__ = (UniqueConstraint("tenant_uid", "tenant_user_id",
                                       name="uq_erasures_tenant_user"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_uid: Mapped[str] = mapped_column(String(36), nullable=False, index=True)
    tenant_user_id: Mapped[int] = mapped_column(Integer, nullable=False)
    pseudonym: Mapped[str] = mapped_column(String(16), nullable=False)
    erased_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
