"""Erasing a person from a tenant: the account becomes a *tombstone* row under a per-user
pseudonym ("Former user 7F3A"), so records and history keep their foreign keys and stay
coherent, while every trace of the person is removed or replaced.

:func:`erase` works on ``tdb`` and writes nothing to the platform; the decision service
(:mod:`qalitel.my_data.requests`) adds the ledger row, and a backup restore replays the
ledger through :func:`erase` again (:mod:`qalitel.my_data.replay`), with the pseudonym the
ledger recorded.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from datetime import UTC, datetime

from flask_babel import gettext as _
from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.security import generate_password_hash

from core.text import fold
from qalitel.my_data.mentions import free_text_tables, needles, prefilter, replace_whole_words
from qalitel.my_data.models import LoginEvent
from qalitel.records import search
from qalitel.records.models import FolderClearance, RecordShare
from qalitel.users.labels import PSEUDONYM_PREFIX
from qalitel.users.models import (
    TOMBSTONE_DOMAIN,
    FormerName,
    Profile,
    User,
    UserGroup,
    new_session_token,
)
from qalitel.users.service import UserError
from tenants.context import tdb

log = logging.getLogger(__name__)

CODE_LENGTHS = (4, 6, 8, 12, 16)


def is_tombstone(user: User) -> bool:
    return user.is_tombstone


def tombstone_email(code: str) -> str:
    return f"former-user-{code.lower()}@{TOMBSTONE_DOMAIN}"


def pseudonym_name(code: str) -> str:
    """The stored name of a tombstone (English; pages show it translated, see
    :func:`qalitel.pseudonyms.translate_pseudonyms`)."""
    return f"{PSEUDONYM_PREFIX} {code}"


def new_code(key: str, tenant_uid: str, user_id: int) -> str:
    """A short upper-case hex code derived from HMAC(key, tenant uid + user id): stable for
    one person, and lengthened until no other tombstone of the tenant uses it."""
    digest = hmac.new(key.encode(), f"{tenant_uid}:{user_id}".encode(),
                      hashlib.sha256).hexdigest().upper()
    for length in CODE_LENGTHS:
        code = digest[:length]
        taken = tdb.execute(select(User.id).where(User.email == tombstone_email(code),
                                                  User.id != user_id)).first()
        if taken is None:
            return code
    raise RuntimeError("no free pseudonym")  # 64 bits of HMAC: cannot happen


def former_names(user: User) -> list[str]:
    """The names ``user`` had before their renames (:class:`FormerName`)."""
    return list(tdb.execute(select(FormerName.name).where(FormerName.user_id == user.id)
                            .order_by(FormerName.id)).scalars())


def _fit(value: str, column: object) -> str:
    length = getattr(getattr(column, "type", None), "length", None)
    return value if length is None or len(value) <= length else value[:length - 1] + "…"


def replace_mentions(replacements: dict[str, str]) -> int:
    """Replace, whole-word and case-insensitively, each key of ``replacements`` by its value
    in every free-text column (:data:`~qalitel.my_data.mentions.FREE_TEXT`), in Python, a
    value too long for its column being shortened; returns how many rows changed."""
    strings = list(replacements)
    if not strings:
        return 0
    changed = 0
    for table, columns in free_text_tables():
        key = list(table.primary_key.columns)
        rows = tdb.execute(select(*key, *columns).where(prefilter(columns, strings))).all()
        for row in rows:
            values = {}
            for column in columns:
                old = getattr(row, column.name)
                if isinstance(old, str):
                    new = replace_whole_words(old, replacements)
                    if new != old:
                        values[column.name] = _fit(new, column)
            if values:
                tdb.execute(update(table).where(*(c == getattr(row, c.name) for c in key))
                            .values(values))
                changed += 1
    _reindex(strings)
    return changed


def _reindex(strings: list[str]) -> None:
    """The folded search copies that held one of ``strings``, recomputed from the columns
    just rewritten, whichever table they were read from."""
    folded = sorted(f for f in {fold(s) for s in strings} if f)
    if not folded:
        return
    for model in search.SEARCHABLE:
        key = model.__mapper__.primary_key[0]
        ids = tdb.execute(select(key).where(or_(*(
            model.search_text.contains(f, autoescape=True) for f in folded)))).scalars()
        search.reindex(tdb, model, list(ids))


def erase(user: User, code: str) -> None:
    """Turn ``user`` into the tombstone of pseudonym ``code`` (flushes, never commits)."""
    if is_tombstone(user):
        return
    try:
        with tdb.begin_nested():
            _erase(user, code)
    except SQLAlchemyError as exc:
        log.exception("erasure of user %s failed", user.id)
        raise UserError(_("The account could not be deleted: nothing was changed. "
                          "Please try again or contact support.")) from exc


def _erase(user: User, code: str) -> None:
    pseudonym = pseudonym_name(code)
    replacements = {n: pseudonym for n in needles([user.name, *former_names(user)], [])}
    replacements.update({e: tombstone_email(code) for e in needles([], [user.email])})
    replace_mentions(replacements)
    for model, column in ((LoginEvent, LoginEvent.user_id), (UserGroup, UserGroup.user_id),
                          (FolderClearance, FolderClearance.user_id),
                          (RecordShare, RecordShare.user_id),
                          (FormerName, FormerName.user_id)):
        tdb.execute(delete(model).where(column == user.id))
    now = datetime.now(UTC)
    user.name = pseudonym
    user.email = tombstone_email(code)
    user.password_hash = generate_password_hash(secrets.token_urlsafe(32))
    user.session_token = new_session_token()
    user.profile = Profile.USER
    user.locale = None
    user.last_login_at = None
    user.suspended_at = now
    tdb.flush()
