"""Writes on users: creation, password checks. Views stay thin and call these."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from werkzeug.security import check_password_hash, generate_password_hash

from qalitel.users.models import Profile, User
from tenants.context import tdb

# Checked against when the email is unknown, so timing does not reveal which emails exist.
_DUMMY_HASH = generate_password_hash("qalitel-dummy-password")


def hash_password(password: str) -> str:
    return generate_password_hash(password)


def find_by_email(email: str) -> User | None:
    return tdb.execute(
        select(User).where(func.lower(User.email) == email.strip().lower())).scalar_one_or_none()


def authenticate(email: str, password: str) -> User | None:
    """The active user with these credentials, or None."""
    if not email or not password or len(email) > 254 or len(password) > 1024:
        return None
    user = find_by_email(email)
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not check_password_hash(user.password_hash, password) or user.is_suspended:
        return None
    user.last_login_at = datetime.now(UTC)
    tdb.commit()
    return user


def create_user(email: str, name: str, password: str, profile: Profile = Profile.USER) -> User:
    user = User(email=email.strip().lower(), name=name.strip(),
                password_hash=hash_password(password), profile=profile)
    tdb.add(user)
    tdb.commit()
    return user
