"""Password-reset and invitation links: signed, time-limited, single-use, tenant-bound.

A link carries ``{"t": tenant uid, "u": user id, "f": fingerprint, "p": purpose}`` signed
with ``URLSafeTimedSerializer`` (``SECRET_KEY`` plus fallbacks). The fingerprint is a digest
of the user's current password hash and session token: setting a password changes both, so a
used link (and every older one) stops working. A link issued by tenant A names A's uid and is
refused at tenant B. Reset links live ``settings.reset_link_minutes`` (default 60),
invitations :data:`INVITE_MAX_AGE`.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

from flask import current_app, request, url_for
from flask_babel import gettext as _
from itsdangerous import BadSignature, URLSafeTimedSerializer

from core import config, mail
from core.links import tenant_link
from qalitel.users.models import User
from qalitel.users.service import find_by_email
from tenants.context import current_tenant, tdb

SALT = "qalitel-password-link-v1"
RESET = "reset"
INVITE = "invite"
INVITE_MAX_AGE = 7 * 24 * 3600
TOKEN_MAX_CHARS = 600


def reset_max_age() -> int:
    settings = config.settings()
    return int(getattr(settings, "reset_link_minutes", 60)) * 60


def _max_age(purpose: str) -> int:
    return INVITE_MAX_AGE if purpose == INVITE else reset_max_age()


def _serializer() -> URLSafeTimedSerializer:
    keys = [*current_app.config.get("SECRET_KEY_FALLBACKS", []), current_app.secret_key]
    return URLSafeTimedSerializer(keys, salt=SALT)


def fingerprint(user: User) -> str:
    material = f"{user.id}|{user.password_hash}|{user.session_token}".encode()
    return hashlib.sha256(material).hexdigest()[:32]


def make_token(user: User, purpose: str = RESET) -> str:
    return _serializer().dumps({"t": current_tenant().uid, "u": user.id,
                                "f": fingerprint(user), "p": purpose})


def read_token(token: str) -> User | None:
    """The active user of the current tenant a still-valid link was made for, or None."""
    if not isinstance(token, str) or not token or len(token) > TOKEN_MAX_CHARS:
        return None
    try:
        data, signed_at = _serializer().loads(token, max_age=max(INVITE_MAX_AGE, reset_max_age()),
                                              return_timestamp=True)
    except (BadSignature, ValueError, TypeError):
        return None
    if not isinstance(data, dict) or data.get("t") != current_tenant().uid:
        return None
    purpose, user_id, print_ = data.get("p"), data.get("u"), data.get("f")
    if (purpose not in (RESET, INVITE) or not isinstance(user_id, int)
            or not 0 < user_id < 2**31 or not isinstance(print_, str)):
        return None
    if time.time() - signed_at.timestamp() > _max_age(purpose):
        return None
    user = tdb.get(User, user_id)
    if user is None or user.is_suspended or not hmac.compare_digest(print_, fingerprint(user)):
        return None
    return user


def external_url(endpoint: str, **values: Any) -> str:
    """An absolute URL of this tenant's page, its host from the configuration only
    (``QALITEL_EXTERNAL_URL``, or ``<slug>.<server name>`` on a subdomain), never from the
    request's ``Host`` header, which a client chooses."""
    settings = config.settings()
    subdomain = bool(request.environ.get("qalitel.subdomain"))
    path = url_for(endpoint, **values)
    if not subdomain:
        path = path.removeprefix(f"/t/{current_tenant().slug}")
    return tenant_link(settings, current_tenant().slug, path, subdomain=subdomain)


def link_for(user: User, purpose: str) -> str:
    return external_url("tenant.auth.reset_password", token=make_token(user, purpose))


def _body(user: User, purpose: str, company: str, link: str) -> str:
    """Plain-text message (in Python rather than a template, so the catalogue holds it)."""
    minutes = _max_age(purpose) // 60
    if purpose == INVITE:
        lines = [
            _("Hello %(name)s,", name=user.name), "",
            _("An administrator of %(company)s created your QALITEL account %(email)s. "
              "To choose your password, open this link:", company=company, email=user.email),
            "", link, "",
            _("The link works once, for %(days)d days. After that, use \"Forgot your "
              "password?\" on the sign-in page.", days=minutes // (60 * 24)),
        ]
    else:
        lines = [
            _("Hello %(name)s,", name=user.name), "",
            _("Someone (probably you) asked to reset the password of your QALITEL account "
              "%(email)s at %(company)s. To choose a new password, open this link:",
              email=user.email, company=company),
            "", link, "",
            _("The link works once, for %(minutes)d minutes.", minutes=minutes),
            _("If you did not ask for it, ignore this message: your password stays as it is."),
        ]
    return "\n".join([*lines, "", "-- ", "QALITEL", ""])


def _send_link(user: User, purpose: str) -> bool | None:
    settings = config.settings()
    company = current_tenant().name
    if purpose == INVITE:
        subject = _("Your QALITEL account at %(company)s", company=company)
    else:
        subject = _("Reset your QALITEL password at %(company)s", company=company)
    body = _body(user, purpose, company, link_for(user, purpose))
    return mail.deliver(mail.build_message(settings, user.email, subject, body))


def request_password_reset(email: str) -> None:
    """Mail a reset link if an active account uses ``email``; do nothing otherwise.

    The caller answers the same either way; mail leaves in the background, so the time taken
    does not tell either.
    """
    user = find_by_email(email)
    if user is None or user.is_suspended:
        return
    _send_link(user, RESET)


def send_reset_link(user: User) -> bool | None:
    """An admin sends a user a reset link."""
    return _send_link(user, RESET)


def send_invitation(user: User) -> bool | None:
    """Mail a new user the link to choose their password."""
    return _send_link(user, INVITE)
