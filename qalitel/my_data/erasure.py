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
import secrets
from datetime import UTC, datetime

from sqlalchemy import String, Text, delete, func, select, update
from werkzeug.security import generate_password_hash

from qalitel.my_data.models import LoginEvent
from qalitel.records.models import FolderClearance, RecordShare
from qalitel.users.models import Profile, User, UserGroup, new_session_token
from tenants.context import tdb
from tenants.schema import TenantBase

# The e-mail domain of tombstones: ``.invalid`` is reserved (RFC 2606), so the address can
# never receive mail, and the e-mail rule refuses it, so it can never sign in.
TOMBSTONE_DOMAIN = "erased.invalid"
PSEUDONYM_PREFIX = "Former user"
CODE_LENGTHS = (4, 6, 8, 12, 16)


def is_tombstone(user: User) -> bool:
    return user.email.endswith("@" + TOMBSTONE_DOMAIN)


def tombstone_email(code: str) -> str:
    return f"former-user-{code.lower()}@{TOMBSTONE_DOMAIN}"


def pseudonym_name(code: str) -> str:
    """The stored name of a tombstone (English; pages show it translated, see
    :func:`qalitel.my_data.labels.display_name`)."""
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


def _free_text_columns() -> list[tuple[object, object]]:
    """Every text column of every tenant table but ``users`` (its row is rewritten whole)."""
    out = []
    for table in TenantBase.metadata.sorted_tables:
        if table.name in ("users", "tenant_identity"):
            continue
        out += [(table, c) for c in table.columns if isinstance(c.type, String | Text)]
    return out


def _replace_mentions(old: str, new: str) -> None:
    if not old:
        return
    for table, column in _free_text_columns():
        tdb.execute(update(table).where(column.contains(old, autoescape=True))
                    .values({column.name: func.replace(column, old, new)}))


def erase(user: User, code: str) -> None:
    """Turn ``user`` into the tombstone of pseudonym ``code`` (flushes, never commits)."""
    if is_tombstone(user):
        return
    name, email = user.name, user.email
    pseudonym = pseudonym_name(code)
    _replace_mentions(email, tombstone_email(code))
    _replace_mentions(name, pseudonym)
    for model, column in ((LoginEvent, LoginEvent.user_id), (UserGroup, UserGroup.user_id),
                          (FolderClearance, FolderClearance.user_id),
                          (RecordShare, RecordShare.user_id)):
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
