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
import re
import secrets
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import String, Text, delete, func, or_, select, update
from werkzeug.security import generate_password_hash

from qalitel.my_data.models import LoginEvent
from qalitel.records.models import FolderClearance, RecordShare
from qalitel.users.labels import PSEUDONYM_PREFIX
from qalitel.users.models import TOMBSTONE_DOMAIN, Profile, User, UserGroup, new_session_token
from tenants.context import tdb
from tenants.schema import TenantBase

# The e-mail domain of tombstones (TOMBSTONE_DOMAIN): ``.invalid`` is reserved (RFC 2606),
# so the address can never receive mail, and the e-mail rule refuses it: no sign-in.
CODE_LENGTHS = (4, 6, 8, 12, 16)


def is_tombstone(user: User) -> bool:
    return user.is_tombstone


def tombstone_email(code: str) -> str:
    return f"former-user-{code.lower()}@{TOMBSTONE_DOMAIN}"


def pseudonym_name(code: str) -> str:
    """The stored name of a tombstone (English; pages show it translated, see
    :func:`qalitel.users.labels.translate_pseudonyms`)."""
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


def _free_text_columns() -> list[tuple[Any, Any]]:
    """Every text column of every tenant table but ``users`` (its row is rewritten whole)."""
    out = []
    for table in TenantBase.metadata.sorted_tables:
        if table.name in ("users", "tenant_identity"):
            continue
        out += [(table, c) for c in table.columns if isinstance(c.type, String | Text)]
    return out


# A name is a word of its own: not inside another word, nor a hyphenated compound
# ("Al-Rashid"), nor the local part of an address ("al@x.org"); "User acme.pdf" mentions it.
_NAME_EDGES = (r"(?<![\w.@-])", r"(?!\w|[-@]\w)")
# An address is not a part of a longer one ("al@x.org.uk", "bal@x.org").
_ADDRESS_EDGES = (r"(?<![\w.@+-])", r"(?!\w|[.@+-]\w)")


def mention_pattern(replacements: dict[str, str]) -> re.Pattern[str]:
    """Whole-word, case-insensitive matches of the keys of ``replacements`` (longest
    first): "Al" matches "al." and "AL" but not "Aluminium"."""
    words = sorted((w for w in replacements if w), key=len, reverse=True)
    parts = []
    for word in words:
        before, after = _ADDRESS_EDGES if "@" in word else _NAME_EDGES
        parts.append(before + re.escape(word) + after)
    return re.compile("|".join(parts), re.IGNORECASE)


def replace_mentions(text: str, replacements: dict[str, str]) -> str:
    """``text`` with every whole-word mention of a key replaced by its value, in one pass
    (a replacement is never itself replaced)."""
    lowered = {word.lower(): new for word, new in replacements.items() if word}
    if not lowered:
        return text
    return mention_pattern(replacements).sub(lambda m: lowered[m.group(0).lower()], text)


def _replace_mentions(replacements: dict[str, str]) -> None:
    """Rewrite the free text of every tenant table: the database narrows the rows down
    (case-insensitive substring), Python applies the whole-word rule to each."""
    needles = [word.lower() for word in replacements if word]
    if not needles:
        return
    for table, column in _free_text_columns():
        keys = list(table.primary_key.columns)
        found = tdb.execute(select(*keys, column).where(or_(
            *(func.lower(column).contains(n, autoescape=True) for n in needles)))).all()
        for row in found:
            before = row[-1]
            after = replace_mentions(before, replacements)
            if after != before:
                tdb.execute(update(table).where(*(k == v for k, v in zip(keys, row[:-1],
                                                                            strict=False)))
                            .values({column.name: after}))


def erase(user: User, code: str) -> None:
    """Turn ``user`` into the tombstone of pseudonym ``code`` (flushes, never commits)."""
    if is_tombstone(user):
        return
    name, email = user.name, user.email
    pseudonym = pseudonym_name(code)
    _replace_mentions({email: tombstone_email(code), name: pseudonym})
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
