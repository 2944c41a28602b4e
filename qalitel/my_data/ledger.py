"""The platform-side erasure ledger: which tenant user was erased, under which pseudonym,
when. No personal data: a restore replays it (:mod:`qalitel.my_data.replay`).

A row names the person by ``person_key``, a keyed hash of the tenant's uid, the user's id
and the user row's random ``uid`` (:func:`person_keys`): ids are reused after a restore (a
new user may get an erased person's id), the random uid never is. Rows written before the
key existed (``person_key`` NULL) still match by id alone.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core import config, crypto
from core.db import db


class Erasure(db.Model):
    __tablename__ = "erasures"
    __table_args__ = (UniqueConstraint("tenant_uid", "person_key",
                                       name="uq_erasures_tenant_person"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_uid: Mapped[str] = mapped_column(String(36), nullable=False, index=True)
    tenant_user_id: Mapped[int] = mapped_column(Integer, nullable=False)
    pseudonym: Mapped[str] = mapped_column(String(16), nullable=False)
    erased_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    person_key: Mapped[str | None] = mapped_column(String(64))


def person_keys(tenant_uid: str, user_id: int, user_uid: str | None) -> list[str]:
    """The ledger keys of one person, under the current encryption key first."""
    data = f"{tenant_uid}:{user_id}:{user_uid or ''}".encode()
    return crypto.keyed_digests(config.settings().encryption_key, data)
