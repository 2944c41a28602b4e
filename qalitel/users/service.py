"""Writes on users and groups of the current tenant. Views stay thin and call these.

Every change that must end a user's sessions (password change, suspension) rotates
``User.session_token``, which is part of the Flask-Login id and of the remember cookie.
Refused changes raise :class:`UserError` with a message meant for the user.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from functools import cache

from flask_babel import gettext as _
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from qalitel.users.models import Group, Profile, User, UserGroup, new_session_token
from tenants.context import tdb

EMAIL_MAX = 254
NAME_MAX = 200
GROUP_NAME_MAX = 100
PASSWORD_MIN = 10
PASSWORD_MAX = 256
EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@cache
def _dummy_hash() -> str:
    """Checked against when the email is unknown, so timing does not reveal which emails
    exist; made at first use (a hash costs a noticeable fraction of a second)."""
    return generate_password_hash("qalitel-dummy-password")


def current_method() -> str:
    return _dummy_hash().split("$", 1)[0]


class UserError(ValueError):
    """A change refused for a reason the person asking can read."""


class WrongPasswordError(UserError):
    """The current password given to change it is wrong."""


# ---------------------------------------------------------------- validation


def normalize_email(raw: object) -> str:
    if not isinstance(raw, str):
        raise UserError(_("Enter a valid email address."))
    email = raw.strip().lower()
    if len(email) > EMAIL_MAX or not EMAIL_RE.fullmatch(email):
        raise UserError(_("Enter a valid email address."))
    return email


def clean_name(raw: object, limit: int = NAME_MAX) -> str:
    """A trimmed, non-empty, printable name of at most ``limit`` characters."""
    name = raw.strip() if isinstance(raw, str) else ""
    if not name:
        raise UserError(_("A name is required."))
    if len(name) > limit or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise UserError(_("A name has at most %(max)d printable characters.", max=limit))
    return name


def check_new_password(password: object) -> str:
    if not isinstance(password, str) or len(password) < PASSWORD_MIN:
        raise UserError(_("A password has at least %(min)d characters.", min=PASSWORD_MIN))
    if len(password) > PASSWORD_MAX:
        raise UserError(_("A password has at most %(max)d characters.", max=PASSWORD_MAX))
    return password


def hash_password(password: str) -> str:
    return generate_password_hash(password)


# ---------------------------------------------------------------- sign-in


def find_by_email(email: str) -> User | None:
    if not isinstance(email, str) or len(email) > EMAIL_MAX:
        return None
    return tdb.execute(
        select(User).where(func.lower(User.email) == email.strip().lower())).scalar_one_or_none()


def check_credentials(email: str, password: str) -> User | None:
    """The user with these credentials, suspended or not; None otherwise.

    Unknown emails cost the same hash check as known ones. A hash made with an older method
    is replaced by one made with the current method (scrypt) on a successful check.
    """
    if not email or not password or len(email) > EMAIL_MAX or len(password) > PASSWORD_MAX:
        return None
    user = find_by_email(email)
    if user is None:
        check_password_hash(_dummy_hash(), password)
        return None
    if not check_password_hash(user.password_hash, password):
        return None
    if not user.is_suspended:
        if not user.password_hash.startswith(current_method() + "$"):
            user.password_hash = hash_password(password)
        user.last_login_at = datetime.now(UTC)
        tdb.commit()
    return user


def authenticate(email: str, password: str) -> User | None:
    """The active user with these credentials, or None."""
    user = check_credentials(email, password)
    return None if user is None or user.is_suspended else user


# ---------------------------------------------------------------- users


def list_users() -> Sequence[User]:
    return tdb.execute(select(User).order_by(func.lower(User.name), User.id)).scalars().all()


def create_user(email: str, name: str, password: str | None = None,
                profile: Profile = Profile.USER) -> User:
    """Create a user. Without a password the account gets an unusable one (see invitations)."""
    email = normalize_email(email)
    name = clean_name(name)
    password = check_new_password(password) if password is not None else secrets.token_urlsafe(32)
    if find_by_email(email) is not None:
        raise UserError(_("A user with this email already exists."))
    user = User(email=email, name=name, password_hash=hash_password(password),
                profile=Profile(profile))
    tdb.add(user)
    try:
        tdb.commit()
    except IntegrityError as exc:
        tdb.rollback()
        raise UserError(_("A user with this email already exists.")) from exc
    return user


def _ensure_an_admin_remains(user: User) -> None:
    """Refuse to take the last active admin away (locks the admin rows on PostgreSQL)."""
    if user.profile is not Profile.ADMIN or user.is_suspended:
        return
    admins = tdb.execute(
        select(User.id).where(User.profile == Profile.ADMIN, User.suspended_at.is_(None))
        .order_by(User.id).with_for_update()).scalars().all()
    if not [uid for uid in admins if uid != user.id]:
        raise UserError(_("This is the last active administrator: "
                          "appoint another administrator first."))


def rename(user: User, name: str) -> None:
    user.name = clean_name(name)
    tdb.commit()


def update_user(user: User, *, name: str, profile: Profile | str) -> None:
    """Set a user's name and profile (admin page)."""
    name = clean_name(name)
    profile = Profile(profile)
    try:
        if profile is not Profile.ADMIN:
            _ensure_an_admin_remains(user)
        user.name = name
        user.profile = profile
        tdb.commit()
    except Exception:
        tdb.rollback()
        raise


def suspend(user: User) -> None:
    """Suspend a user: their sessions and remember cookies end at once."""
    if user.is_suspended:
        return
    try:
        _ensure_an_admin_remains(user)
        user.suspended_at = datetime.now(UTC)
        user.session_token = new_session_token()
        tdb.commit()
    except Exception:
        tdb.rollback()
        raise


def reactivate(user: User) -> None:
    if not user.is_suspended:
        return
    user.suspended_at = None
    user.session_token = new_session_token()
    tdb.commit()


def end_sessions(user: User) -> None:
    """Sign the user out everywhere: every session and remember cookie issued so far stops
    loading. Called at logout, so a copy of the session cookie taken before it is worthless."""
    user.session_token = new_session_token()
    tdb.commit()


def set_password(user: User, password: str) -> None:
    """Replace the password and end every session (and remember cookie) of the user."""
    user.password_hash = hash_password(check_new_password(password))
    user.session_token = new_session_token()
    tdb.commit()


def change_own_password(user: User, current: str, new: str) -> None:
    if (not isinstance(current, str) or len(current) > PASSWORD_MAX
            or not check_password_hash(user.password_hash, current)):
        raise WrongPasswordError(_("The current password is wrong."))
    set_password(user, new)


# ---------------------------------------------------------------- groups


def list_groups() -> Sequence[Group]:
    return tdb.execute(select(Group).order_by(func.lower(Group.name), Group.id)).scalars().all()


def _group_name_taken(name: str, but: int | None = None) -> bool:
    query = select(Group.id).where(func.lower(Group.name) == name.lower())
    if but is not None:
        query = query.where(Group.id != but)
    return tdb.execute(query).first() is not None


def create_group(name: str) -> Group:
    name = clean_name(name, GROUP_NAME_MAX)
    if _group_name_taken(name):
        raise UserError(_("A group with this name already exists."))
    group = Group(name=name)
    tdb.add(group)
    try:
        tdb.commit()
    except IntegrityError as exc:
        tdb.rollback()
        raise UserError(_("A group with this name already exists.")) from exc
    return group


def rename_group(group: Group, name: str) -> None:
    name = clean_name(name, GROUP_NAME_MAX)
    if _group_name_taken(name, but=group.id):
        raise UserError(_("A group with this name already exists."))
    group.name = name
    try:
        tdb.commit()
    except IntegrityError as exc:
        tdb.rollback()
        raise UserError(_("A group with this name already exists.")) from exc


def delete_group(group: Group) -> None:
    tdb.execute(delete(UserGroup).where(UserGroup.group_id == group.id))
    tdb.delete(group)
    tdb.commit()


def group_ids_of(user: User) -> list[int]:
    return list(tdb.execute(
        select(UserGroup.group_id).where(UserGroup.user_id == user.id)).scalars())


def groups_by_user() -> dict[int, list[str]]:
    """Group names of every user, for the user list."""
    rows = tdb.execute(select(UserGroup.user_id, Group.name)
                       .join(Group, Group.id == UserGroup.group_id)
                       .order_by(func.lower(Group.name))).all()
    out: dict[int, list[str]] = {}
    for user_id, name in rows:
        out.setdefault(user_id, []).append(name)
    return out


def member_ids(group: Group) -> list[int]:
    return list(tdb.execute(
        select(UserGroup.user_id).where(UserGroup.group_id == group.id)).scalars())


def _existing(model: type[User] | type[Group], ids: Iterable[int]) -> set[int]:
    wanted = {int(i) for i in ids}
    if not wanted:
        return set()
    return set(tdb.execute(select(model.id).where(model.id.in_(wanted))).scalars())


def set_user_groups(user: User, group_ids: Iterable[int]) -> None:
    """Make ``user`` a member of exactly these groups (unknown ids are ignored)."""
    wanted = _existing(Group, group_ids)
    current = set(group_ids_of(user))
    if current - wanted:
        tdb.execute(delete(UserGroup).where(UserGroup.user_id == user.id,
                                            UserGroup.group_id.in_(current - wanted)))
    for group_id in sorted(wanted - current):
        tdb.add(UserGroup(user_id=user.id, group_id=group_id))
    tdb.commit()


def set_group_members(group: Group, user_ids: Iterable[int]) -> None:
    """Make exactly these users members of ``group`` (unknown ids are ignored)."""
    wanted = _existing(User, user_ids)
    current = set(member_ids(group))
    if current - wanted:
        tdb.execute(delete(UserGroup).where(UserGroup.group_id == group.id,
                                            UserGroup.user_id.in_(current - wanted)))
    for user_id in sorted(wanted - current):
        tdb.add(UserGroup(user_id=user_id, group_id=group.id))
    tdb.commit()
