"""SCOQI engineers' accounts: password AND time-based one-time code, the console's own cookie.

The staff console never uses the tenant app's session: a staff login lives in the signed
cookie ``qalitel_staff`` (``Path=/staff/``, ``HttpOnly``, ``SameSite=Strict``, 8 hours from
sign-in), which names the engineer and their ``session_token``; rotating the token ends every
session of that engineer. TOTP secrets are encrypted at rest with ``settings.encryption_key``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from typing import Any

import pyotp
from flask import Response, after_this_request, current_app, g
from itsdangerous import BadData, URLSafeTimedSerializer
from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from core import clock, config
from core import throttle as core_throttle
from core.config import Settings
from core.crypto import decrypt, encrypt
from core.db import db
from core.validation import InvalidInput, check_email, check_name, in_english
from maintenance.models import StaffUser

COOKIE_NAME = "qalitel_staff"
COOKIE_PATH = "/staff/"
SESSION_HOURS = 8
PASSWORD_MIN = 12
PASSWORD_MAX = 1024
NAME_MAX = 200
TOTP_ISSUER = "QALITEL Host"
TOTP_INTERVAL = 30
_SALT = "qalitel-staff-session"


@cache
def _dummy_hash() -> str:
    """Checked against for unknown emails; made at first use, not at import."""
    return generate_password_hash("qalitel-staff-dummy-password")


class StaffError(ValueError):
    """Invalid staff account data (email, name, password)."""


def _settings() -> Settings:
    return config.settings()


def normalise_email(email: object) -> str:
    """The address as :func:`core.validation.check_email` accepts it, else StaffError."""
    try:
        return check_email(email)
    except InvalidInput as exc:
        raise StaffError(f"invalid email address {str(email)[:80]!r}: {in_english(exc)}") \
            from exc


def _check_name(name: object) -> str:
    try:
        return check_name(name, NAME_MAX)
    except InvalidInput as exc:
        raise StaffError(f"invalid name: {in_english(exc)}") from exc


def check_password_rules(password: object) -> str:
    if not isinstance(password, str) or not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise StaffError(f"the password must have {PASSWORD_MIN} to {PASSWORD_MAX} characters")
    if "\x00" in password:
        raise StaffError("the password cannot contain a NUL character")
    return password


def find_staff(email: str) -> StaffUser | None:
    try:
        email = normalise_email(email)
    except StaffError:
        return None
    return db.session.execute(
        select(StaffUser).where(func.lower(StaffUser.email) == email)).scalar_one_or_none()


def _totp(secret: str) -> pyotp.TOTP:
    return pyotp.TOTP(secret, interval=TOTP_INTERVAL)


def enrolment_uri(staff: StaffUser) -> str:
    """The ``otpauth://`` URI an authenticator app scans (it contains the secret)."""
    secret = decrypt(_settings().encryption_key, staff.totp_secret_encrypted)
    return _totp(secret).provisioning_uri(name=staff.email, issuer_name=TOTP_ISSUER)


def create_staff(email: str, name: str | None, password: str) -> tuple[StaffUser, str]:
    """Create an engineer's account; returns it and its TOTP enrolment URI."""
    email = normalise_email(email)
    name = _check_name(name if name is not None else email.split("@")[0])
    check_password_rules(password)
    if find_staff(email) is not None:
        raise StaffError(f"a staff account {email} already exists")
    secret = pyotp.random_base32()
    staff = StaffUser(email=email, name=name, password_hash=generate_password_hash(password),
                      totp_secret_encrypted=encrypt(_settings().encryption_key, secret),
                      session_token=secrets.token_urlsafe(32), active=True,
                      created_at=clock.now())
    db.session.add(staff)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise StaffError(f"a staff account {email} already exists") from None
    return staff, enrolment_uri(staff)


def reset_totp(staff: StaffUser) -> str:
    """A new TOTP secret (the old authenticator stops working); ends the engineer's sessions.
    Flushed: the command commits it."""
    secret = pyotp.random_base32()
    staff.totp_secret_encrypted = encrypt(_settings().encryption_key, secret)
    staff.last_totp_step = None
    staff.session_token = secrets.token_urlsafe(32)
    db.session.flush()
    return enrolment_uri(staff)


def end_sessions(staff: StaffUser) -> None:
    """Rotate the session token (flushed: the request or command commits it)."""
    staff.session_token = secrets.token_urlsafe(32)
    db.session.flush()


def set_active(staff: StaffUser, active: bool) -> None:
    """(De)activate and end the sessions (flushed: the request or command commits it)."""
    staff.active = active
    staff.session_token = secrets.token_urlsafe(32)
    db.session.flush()


def _matching_step(secret: str, code: str) -> int | None:
    """The TOTP time step (now, or one step either side) whose code is ``code``."""
    current = int(clock.now().timestamp()) // TOTP_INTERVAL
    totp = _totp(secret)
    found = None
    for step in (current - 1, current, current + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            found = step
    return found


def authenticate(email: str, password: str, code: str) -> StaffUser | None:
    """The active engineer with this password and a fresh TOTP code, else None.

    A code is accepted once: its time step must be later than the last one used, and the
    step is claimed with a conditional UPDATE, so two concurrent logins cannot share it.
    """
    code = (code or "").replace(" ", "")
    if not email or not password or len(password) > PASSWORD_MAX or len(email) > 254:
        return None
    if "\x00" in password:  # HMAC pads its key with zero bytes: "pw\x00" would open "pw"
        return None
    staff = find_staff(email)
    if staff is None:
        check_password_hash(_dummy_hash(), password)
        return None
    password_ok = check_password_hash(staff.password_hash, password)
    if not password_ok or not staff.active or not (len(code) == 6 and code.isdigit()):
        return None
    step = _matching_step(decrypt(_settings().encryption_key, staff.totp_secret_encrypted), code)
    if step is None:
        return None
    claimed = db.session.execute(
        update(StaffUser)
        .where(StaffUser.id == staff.id,
               or_(StaffUser.last_totp_step.is_(None), StaffUser.last_totp_step < step))
        .values(last_totp_step=step, last_login_at=clock.now()))
    db.session.commit()
    if claimed.rowcount != 1:
        return None
    db.session.refresh(staff)
    return staff


# ---------------------------------------------------------------- the staff cookie


def _serializer() -> URLSafeTimedSerializer:
    keys = [*current_app.config.get("SECRET_KEY_FALLBACKS", []), current_app.config["SECRET_KEY"]]
    return URLSafeTimedSerializer(keys, salt=_SALT)


def issue_cookie(response: Response, staff: StaffUser) -> None:
    value = _serializer().dumps({"s": staff.id, "t": staff.session_token,
                                 "i": int(clock.now().timestamp())})
    response.set_cookie(COOKIE_NAME, value, max_age=SESSION_HOURS * 3600, path=COOKIE_PATH,
                        httponly=True, samesite="Strict", secure=_settings().https)


def clear_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE_NAME, path=COOKIE_PATH, httponly=True, samesite="Strict",
                           secure=_settings().https)


@dataclass(frozen=True)
class _Payload:
    staff_id: int
    token: str
    issued: int


def _parse(raw: str) -> _Payload | None:
    if not raw or len(raw) > 1024:
        return None
    try:
        data: Any = _serializer().loads(raw, max_age=SESSION_HOURS * 3600)
    except BadData:
        return None
    if not isinstance(data, dict):
        return None
    staff_id, token, issued = data.get("s"), data.get("t"), data.get("i")
    if not (isinstance(staff_id, int) and isinstance(token, str) and isinstance(issued, int)):
        return None
    return _Payload(staff_id, token, issued)


def staff_from_cookie(raw: str | None) -> StaffUser | None:
    """The engineer a ``qalitel_staff`` cookie names, if it is genuine, fresh and current."""
    payload = _parse(raw or "")
    if payload is None:
        return None
    age = clock.now().timestamp() - payload.issued
    if not -300 <= age <= timedelta(hours=SESSION_HOURS).total_seconds():
        return None
    staff = db.session.get(StaffUser, payload.staff_id)
    if staff is None or not staff.active:
        return None
    if not hmac.compare_digest(staff.session_token.encode(), payload.token.encode()):
        return None
    return staff


# ---------------------------------------------------------------- login throttling


class LoginThrottle:
    """Failed console logins on the platform's one throttle (:mod:`core.throttle`): per email
    and address (tight), per email from any address (looser than one address can reach, so
    nobody locks an engineer out from elsewhere), per address whatever the email.

    :meth:`blocked` reserves the attempt's units before the password is checked (so
    concurrent attempts cannot exceed a limit); :meth:`failed` keeps them, and when the
    request ends without a failure they are given back.
    """

    PER_ACCOUNT_ADDRESS = "5 per 15 minutes"
    PER_ACCOUNT = "40 per hour"
    PER_ADDRESS = "20 per 15 minutes"
    _RESERVED = "qalitel_staff_login_reservation"

    def __init__(self, store: core_throttle.Throttle) -> None:
        self.store = store

    def _charges(self, email: str, address: str) -> list[core_throttle.Charge]:
        account = hashlib.sha256(core_throttle.account_key(email).encode()).hexdigest()[:32]
        address = core_throttle.address_key(address) if address else "-"
        where = hashlib.sha256(address.encode()).hexdigest()[:32]
        return [*core_throttle.charges("staff-login", f"acct-addr:{account}:{where}",
                                       self.PER_ACCOUNT_ADDRESS),
                *core_throttle.charges("staff-login", f"acct:{account}", self.PER_ACCOUNT),
                *core_throttle.charges("staff-login", f"addr:{address or '-'}",
                                       self.PER_ADDRESS)]

    def blocked(self, email: str, address: str) -> bool:
        """True when a limit is reached; otherwise this attempt's units are reserved."""
        try:
            reservation = self.store.acquire(self._charges(email, address))
        except core_throttle.Throttled:
            return True
        setattr(g, self._RESERVED, reservation)

        @after_this_request
        def settle(response: Response) -> Response:
            unused = g.pop(self._RESERVED, None)
            if unused is not None:
                unused.release()
            return response

        return False

    def failed(self, email: str, address: str) -> None:
        """Count a failure: keep the units :meth:`blocked` reserved (or take them now)."""
        if g.pop(self._RESERVED, None) is None:
            self.store.hit(self._charges(email, address))


def throttle() -> LoginThrottle:
    return LoginThrottle(core_throttle.of_app())
