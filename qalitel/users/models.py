"""Users of one client company, stored in its tenant database."""

from __future__ import annotations

import enum
import secrets
from datetime import UTC, datetime

from flask_login import UserMixin
from sqlalchemy import DateTime, ForeignKey, Integer, String, func
from sqlalchemy.orm import Mapped, mapped_column

from core.db import value_enum
from tenants.context import current_tenant
from tenants.schema import TenantBase


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Profile(enum.StrEnum):
    USER = "user"
    MANAGER = "manager"
    ADMIN = "admin"


# The e-mail domain of erased accounts (tombstones, :mod:`qalitel.my_data.erasure`).
TOMBSTONE_DOMAIN = "erased.invalid"


def new_session_token() -> str:
    return secrets.token_urlsafe(24)


def new_user_uid() -> str:
    """A random id of the person, never reused: ids are reused after a backup restore, so
    the erasure ledger names people by this (hashed), not by ``users.id``."""
    return secrets.token_hex(16)


class User(UserMixin, TenantBase):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    profile: Mapped[Profile] = mapped_column(
        value_enum(Profile),
        nullable=False, default=Profile.USER)
    session_token: Mapped[str] = mapped_column(String(64), nullable=False,
                                               default=new_session_token)
    # The language of the user's last sign-in: the mail they are sent speaks it.
    locale: Mapped[str | None] = mapped_column(String(8))
    suspended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=_utcnow, nullable=False)
    # Set on every insert (nullable only so the column could be added to a live table).
    uid: Mapped[str | None] = mapped_column(String(40), unique=True, index=True,
                                            default=new_user_uid)

    @property
    def is_admin(self) -> bool:
        """What ``core.web.admin_required`` checks."""
        return self.profile is Profile.ADMIN

    @property
    def is_suspended(self) -> bool:
        return self.suspended_at is not None

    @property
    def is_tombstone(self) -> bool:
        """An erased account: kept under its pseudonym, never edited nor reactivated."""
        return self.email.endswith("@" + TOMBSTONE_DOMAIN)

    @property
    def is_active(self) -> bool:  # type: ignore[override]
        return not self.is_suspended

    def get_id(self) -> str:
        return login_id(self)


def login_id(user: User) -> str:
    """Flask-Login id: tenant, user and session token. Changing the token ends sessions."""
    return f"{current_tenant().uid}:{user.id}:{user.session_token}"


class FormerName(TenantBase):
    """A name the person had before a rename: history and free text may still hold it, so
    the personal export looks for it and an erasure replaces it too."""

    __tablename__ = "user_former_names"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         nullable=False, index=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    replaced_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False)


class Group(TenantBase):
    __tablename__ = "groups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True, nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False)


class UserGroup(TenantBase):
    __tablename__ = "user_groups"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"),
                                          primary_key=True, index=True)
