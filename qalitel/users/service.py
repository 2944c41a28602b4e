"""Writes on users and groups of the current tenant. Views stay thin and call these.

Every change that must end a user's sessions (password change, suspension) rotates
``User.session_token``, which is part of the Flask-Login id and of the remember cookie.
Refused changes raise :class:`UserError` with a message meant for the user. Functions flush
and never commit: the request (or CLI command) commits once (:mod:`qalitel.transaction`).
Input rules are those of :mod:`core.validation`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from core import validation
from core.pagination import Page, paginate
from core.validation import EMAIL_MAX, NAME_MAX, PASSWORD_MAX, PASSWORD_MIN
from qalitel.users.models import (
    TOMBSTONE_DOMAIN,
    FormerName,
    Group,
    Profile,
    User,
    UserGroup,
    new_session_token,
)
from tenants.context import tdb

GROUP_NAME_MAX = 100
USERS_PER_PAGE = 50

__all__ = ["EMAIL_MAX", "GROUP_NAME_MAX", "NAME_MAX", "PASSWORD_MAX", "PASSWORD_MIN"]


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


def _checked(rule: Callable[..., Any], raw: object, *args: Any) -> Any:
    try:
        return rule(raw, *args)
    except validation.InvalidInput as exc:
        raise UserError(str(exc)) from exc


def normalize_email(raw: object) -> str:
    return _checked(validation.check_email, raw)


def clean_name(raw: object, limit: int = NAME_MAX) -> str:
    """A trimmed, non-empty, printable name of at most ``limit`` characters."""
    return _checked(validation.check_name, raw, limit)


def check_new_password(password: object) -> str:
    return _checked(validation.check_password, password)


def hash_password(password: str) -> str:
    return generate_password_hash(password)


# ---------------------------------------------------------------- sign-in


def find_by_email(email: object) -> User | None:
    """The user with this address; None for an address no account can have."""
    address = validation.email_or_none(email)
    if address is None:
        return None
    return tdb.execute(
        select(User).where(func.lower(User.email) == address)).scalar_one_or_none()


def check_credentials(email: str, password: str) -> User | None:
    """The user with these credentials, suspended or not; None otherwise.

    Unknown emails cost the same hash check as known ones. A hash made with an older method
    is replaced by one made with the current method (scrypt) on a successful check.
    """
    if not validation.password_candidate(password):
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
        tdb.flush()
    return user


def authenticate(email: str, password: str) -> User | None:
    """The active user with these credentials, or None."""
    user = check_credentials(email, password)
    return None if user is None or user.is_suspended else user


# ---------------------------------------------------------------- users


def list_users() -> Sequence[User]:
    return tdb.execute(select(User).order_by(func.lower(User.name), User.id)).scalars().all()


def user_page(page: int, page_size: int = USERS_PER_PAGE) -> Page:
    """One page of the user list, by name."""
    return paginate(tdb, select(User).order_by(func.lower(User.name), User.id),
                    select(func.count()).select_from(User), page, page_size, scalars=True)


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
    _flush_unique(user, _("A user with this email already exists."))
    return user


def _flush_unique(obj: object, message: str) -> None:
    """Add and flush ``obj``. Losing a unique-constraint race (two admins, same name) fails
    the whole unit of work: it is rolled back, and the UserError makes the answer an error."""
    tdb.add(obj)
    try:
        tdb.flush()
    except IntegrityError as exc:
        from qalitel.transaction import rollback

        rollback()  # drops the follow-ups (mail) queued for what is undone
        raise UserError(message) from exc


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


def ensure_an_admin_remains(user: User) -> None:
    """Refuse (:class:`UserError`) to take ``user`` away if they are the last active admin."""
    _ensure_an_admin_remains(user)


def refuse_tombstone(user: User) -> None:
    """An erased account stays as it is: :class:`UserError` for any change to it."""
    if user.is_tombstone:
        raise UserError(_("This account was deleted at its owner's request: it can no "
                          "longer be changed or reactivated."))


def _set_name(user: User, name: str) -> None:
    """Rename ``user``, keeping the name they had (:class:`FormerName`)."""
    if name != user.name:
        tdb.add(FormerName(user_id=user.id, name=user.name))
        user.name = name


def rename(user: User, name: str) -> None:
    refuse_tombstone(user)
    if name != user.name:
        _set_name(user, clean_name(name))
    tdb.flush()


def update_user(user: User, *, name: str, profile: Profile | str) -> None:
    """Set a user's name and profile (admin page); unchanged values are left alone."""
    refuse_tombstone(user)
    name = name if name == user.name else clean_name(name)
    try:
        profile = Profile(profile)
    except ValueError as exc:
        raise UserError(_("Profile: not a valid choice.")) from exc
    if profile is not user.profile and profile is not Profile.ADMIN:
        _ensure_an_admin_remains(user)
    _set_name(user, name)
    if profile is not user.profile:
        user.profile = profile
    tdb.flush()


def suspend(user: User) -> None:
    """Suspend a user: their sessions and remember cookies end at once."""
    if user.is_suspended:
        return
    _ensure_an_admin_remains(user)
    user.suspended_at = datetime.now(UTC)
    user.session_token = new_session_token()
    tdb.flush()


def reactivate(user: User) -> None:
    refuse_tombstone(user)
    if not user.is_suspended:
        return
    user.suspended_at = None
    user.session_token = new_session_token()
    tdb.flush()


def end_sessions(user: User) -> None:
    """Sign the user out everywhere: every session and remember cookie issued so far stops
    loading. Called at logout, so a copy of the session cookie taken before it is worthless."""
    user.session_token = new_session_token()
    tdb.flush()


def set_password(user: User, password: str) -> None:
    """Replace the password and end every session (and remember cookie) of the user."""
    user.password_hash = hash_password(check_new_password(password))
    user.session_token = new_session_token()
    tdb.flush()


def change_own_password(user: User, current: str, new: str) -> None:
    if (not validation.password_candidate(current)
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
    _flush_unique(group, _("A group with this name already exists."))
    return group


def rename_group(group: Group, name: str) -> None:
    name = clean_name(name, GROUP_NAME_MAX)
    if _group_name_taken(name, but=group.id):
        raise UserError(_("A group with this name already exists."))
    if name != group.name:
        group.name = name
        _flush_unique(group, _("A group with this name already exists."))


def delete_group(group: Group) -> None:
    tdb.execute(delete(UserGroup).where(UserGroup.group_id == group.id))
    tdb.delete(group)
    tdb.flush()


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
    wanted = {i for i in (validation.id_or_none(raw) for raw in ids) if i is not None}
    if not wanted:
        return set()
    return set(tdb.execute(select(model.id).where(model.id.in_(wanted))).scalars())


def _tombstone_ids() -> set[int]:
    return set(tdb.execute(select(User.id).where(
        User.email.endswith("@" + TOMBSTONE_DOMAIN, autoescape=True))).scalars())


def set_user_groups(user: User, group_ids: Iterable[int]) -> None:
    """Make ``user`` a member of exactly these groups (unknown ids are ignored)."""
    refuse_tombstone(user)
    wanted = _existing(Group, group_ids)
    current = set(group_ids_of(user))
    if current - wanted:
        tdb.execute(delete(UserGroup).where(UserGroup.user_id == user.id,
                                            UserGroup.group_id.in_(current - wanted)))
    for group_id in sorted(wanted - current):
        tdb.add(UserGroup(user_id=user.id, group_id=group_id))
    tdb.flush()


def set_group_members(group: Group, user_ids: Iterable[int]) -> None:
    """Make exactly these users members of ``group`` (unknown ids and erased accounts are
    ignored)."""
    wanted = _existing(User, user_ids) - _tombstone_ids()
    current = set(member_ids(group))
    if current - wanted:
        tdb.execute(delete(UserGroup).where(UserGroup.group_id == group.id,
                                            UserGroup.user_id.in_(current - wanted)))
    for user_id in sorted(wanted - current):
        tdb.add(UserGroup(user_id=user_id, group_id=group.id))
    tdb.flush()
