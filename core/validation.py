"""One rule per kind of input: e-mail addresses, names, free text, passwords, 32-bit ids and
redirect targets. Services, forms, the CLI and provisioning call these, so a value accepted
in one place is accepted everywhere (a password the CLI takes can sign in).

Each ``check_*`` returns the cleaned value or raises :class:`InvalidInput`, whose message is
meant for the person who typed the value. ``is_*`` / ``*_or_none`` never raise.
"""

from __future__ import annotations

import unicodedata
import zoneinfo
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email
from flask_babel import lazy_gettext as _l

EMAIL_MAX = 254
NAME_MAX = 200
PASSWORD_MIN = 10
PASSWORD_MAX = 256
ID_MAX = 2**31 - 1  # integer primary keys are 32-bit in both databases
REDIRECT_MAX = 2048
TIME_ZONE_MAX = 64

# Control, format (bidi overrides, zero-width), surrogate, line/paragraph separators.
_UNPRINTABLE = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
# In multi-line text, only these control characters are kept.
_TEXT_CONTROLS = frozenset("\t\n\r")
# Characters a redirect path may hold (RFC 3986 unreserved, sub-delims, ':', '@', '/', '%',
# '?', '=' and '&' of a query): anything else (backslash, spaces, controls) is refused.
_PATH_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                        "-._~!$&'()*+,;=:@/%?")


class InvalidInput(ValueError):
    """A value refused, with a message for the person who sent it."""


def has_forbidden_characters(value: str, *, multiline: bool = False) -> bool:
    """True when ``value`` holds a NUL or another control/format character (tab, newline and
    carriage return are allowed in multi-line text)."""
    for char in value:
        if multiline and char in _TEXT_CONTROLS:
            continue
        if unicodedata.category(char) in _UNPRINTABLE:
            return True
    return False


def check_email(raw: object) -> str:
    """A syntactically valid address (``email-validator``, no DNS lookup, at most 64 characters
    before the ``@`` as RFC 5321 says), lower-cased."""
    if not isinstance(raw, str):
        raise InvalidInput(_l("Enter a valid email address."))
    email = raw.strip()
    if not email or len(email) > EMAIL_MAX or has_forbidden_characters(email):
        raise InvalidInput(_l("Enter a valid email address."))
    try:
        result = validate_email(email, check_deliverability=False, strict=True)
    except EmailNotValidError as exc:
        raise InvalidInput(_l("Enter a valid email address.")) from exc
    return result.normalized.lower()


def email_or_none(raw: object) -> str | None:
    """The address to look up, or None when no account can have it (sign-in, reset)."""
    try:
        return check_email(raw)
    except InvalidInput:
        return None


def check_name(raw: object, limit: int = NAME_MAX) -> str:
    """A person's, company's, group's or folder's name: trimmed, non-empty, printable."""
    name = raw.strip() if isinstance(raw, str) else ""
    if not name:
        raise InvalidInput(_l("A name is required."))
    if len(name) > limit or has_forbidden_characters(name):
        raise InvalidInput(_l("A name has at most %(max)d printable characters.", max=limit))
    return name


def check_text(raw: object, limit: int, *, multiline: bool = True) -> str:
    """Free text (descriptions, comments, titles when ``multiline`` is False): trimmed, at most
    ``limit`` characters, no control characters but tab and line breaks."""
    text = raw.strip() if isinstance(raw, str) else ""
    if len(text) > limit:
        raise InvalidInput(_l("At most %(max)d characters.", max=limit))
    if has_forbidden_characters(text, multiline=multiline):
        raise InvalidInput(_l("This text contains a forbidden character."))
    return text


def check_password(raw: object) -> str:
    """A new password: from :data:`PASSWORD_MIN` to :data:`PASSWORD_MAX` characters."""
    if not isinstance(raw, str) or len(raw) < PASSWORD_MIN:
        raise InvalidInput(_l("A password has at least %(min)d characters.", min=PASSWORD_MIN))
    if len(raw) > PASSWORD_MAX:
        raise InvalidInput(_l("A password has at most %(max)d characters.", max=PASSWORD_MAX))
    if "\x00" in raw:
        raise InvalidInput(_l("A password cannot contain a NUL character."))
    return raw


def password_candidate(raw: object) -> bool:
    """Whether a password typed at sign-in is worth hashing: any password the rule above
    accepts is; longer ones, and ones with a NUL, are refused at once (HMAC pads its key
    with zero bytes, so "secret\x00" would open the account of "secret")."""
    return isinstance(raw, str) and 0 < len(raw) <= PASSWORD_MAX and "\x00" not in raw


def in_english(exc: BaseException) -> str:
    """An :class:`InvalidInput` message for operators (CLI, provisioning errors)."""
    from flask_babel import force_locale

    with force_locale("en"):
        return str(exc)


def is_id(value: object) -> bool:
    """A positive 32-bit integer (a primary key that can exist)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= ID_MAX


def id_or_none(raw: Any) -> int | None:
    """An id from text (``"42"``) or an int; None when it cannot be a primary key."""
    if isinstance(raw, str):
        if not raw.isascii() or not raw.isdigit() or len(raw) > 10:
            return None
        raw = int(raw)
    return raw if is_id(raw) else None


def safe_redirect(target: object, prefix: str) -> str | None:
    """``target`` when it is a local path under ``prefix`` (same origin, path and query only,
    no ``//``, ``\\`` or dot segments), else None."""
    if (not isinstance(target, str) or not target or len(target) > REDIRECT_MAX
            or not target.startswith(prefix) or not prefix.startswith("/")):
        return None
    if any(c not in _PATH_CHARS for c in target) or "//" in target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or parts.fragment:
        return None
    segments = parts.path.split("/")
    if "." in segments or ".." in segments:
        return None
    return target


@lru_cache(maxsize=1)
def time_zones() -> tuple[str, ...]:
    """The IANA time zones a person may choose (system tzdata that pytz also knows, since
    Flask-Babel works with pytz), sorted."""
    import pytz

    return tuple(sorted(zoneinfo.available_timezones() & pytz.all_timezones_set))


def is_time_zone(value: object) -> bool:
    """An IANA time zone name (``Europe/Paris``) this installation knows."""
    return (isinstance(value, str) and 0 < len(value) <= TIME_ZONE_MAX
            and value in _time_zone_set())


@lru_cache(maxsize=1)
def _time_zone_set() -> frozenset[str]:
    return frozenset(time_zones())
