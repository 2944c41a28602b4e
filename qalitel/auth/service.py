"""Password-reset and invitation links: signed, time-limited, single-use, tenant-bound.

A link carries ``{"t": tenant uid, "u": user id, "f": fingerprint, "p": purpose}`` signed
with ``URLSafeTimedSerializer`` (``SECRET_KEY`` plus fallbacks). The fingerprint is a digest
of the user's current password hash and session token: setting a password changes both, so a
used link (and every older one) stops working. A link issued by tenant A names A's uid and is
refused at tenant B. Reset links live ``settings.reset_link_minutes`` (default 60),
invitations :data:`INVITE_MAX_AGE`.

Messages (``templates/mail/*.txt``, in the recipient's language) leave after the request's
transaction commits (:func:`qalitel.transaction.after_commit`): an invitation is never sent
for an account that was not saved. Mail an administrator asks for is sent then and there,
and the administrator is told whether it left, or why not; the anonymous "forgot password"
mail leaves in the background, so the answer and its timing never tell whether an account
exists.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import smtplib
import time
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

from flask import current_app, flash, has_request_context, render_template, request, url_for
from flask_babel import force_locale, get_locale
from flask_babel import gettext as _
from itsdangerous import BadSignature, URLSafeTimedSerializer

from core import config, mail, validation
from core.links import tenant_link
from qalitel import transaction
from qalitel.i18n import DEFAULT as DEFAULT_LOCALE
from qalitel.users.models import User
from qalitel.users.service import find_by_email
from tenants.context import current_tenant, tdb

log = logging.getLogger(__name__)

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
    if (purpose not in (RESET, INVITE) or not validation.is_id(user_id)
            or not isinstance(print_, str)):
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


MAIL_TEMPLATES = {INVITE: "mail/invitation.txt", RESET: "mail/reset.txt"}


def link_message(user: User) -> Callable[[str], EmailMessage]:
    """A builder of the message carrying ``user``'s link, in the language they signed in
    with last; for someone who never did (a new account), in the language of the request
    (the inviting administrator's, the person asking for a reset)."""
    current = get_locale() if has_request_context() else None
    locale = user.locale or (current.language if current is not None else DEFAULT_LOCALE)

    def build(purpose: str) -> EmailMessage:
        company = current_tenant().name
        with force_locale(locale):
            if purpose == INVITE:
                subject = _("Your QALITEL account at %(company)s", company=company)
            else:
                subject = _("Reset your QALITEL password at %(company)s", company=company)
            minutes = _max_age(purpose) // 60
            body = render_template(MAIL_TEMPLATES[purpose], user=user, company=company,
                                   link=link_for(user, purpose), minutes=minutes,
                                   days=minutes // (60 * 24))
        return mail.build_message(config.settings(), user.email, subject, body)

    return build


def failure_reason(exc: BaseException) -> str:
    """Why a message could not be sent, in words an administrator can act on."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused) and exc.recipients:
        code, text = next(iter(exc.recipients.values()))
        return _("the mail server refused the address: %(reply)s", reply=_reply(code, text))
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return _("the mail server refused the sign-in of the host: %(reply)s",
                 reply=_reply(exc.smtp_code, exc.smtp_error))
    if isinstance(exc, smtplib.SMTPResponseException):
        return _("the mail server refused: %(reply)s", reply=_reply(exc.smtp_code, exc.smtp_error))
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return _("the mail server closed the connection")
    if isinstance(exc, TimeoutError):
        return _("the mail server did not answer in time")
    if isinstance(exc, OSError):
        return _("the mail server could not be reached: %(error)s",
                 error=exc.strerror or exc.__class__.__name__)
    return _("the mail server refused: %(reply)s", reply=str(exc)[:200])


def _reply(code: int, text: bytes | str) -> str:
    message = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return f"{code} {message}"[:300]


def send_now(message: EmailMessage) -> str | None:
    """Send at once; None when the server took the message, else why it did not."""
    try:
        mail.send_now(config.settings(), message)
    except (smtplib.SMTPException, OSError) as exc:
        log.error("mail to %s not sent: %s", message["To"], exc)
        return failure_reason(exc)
    return None


def _report(user: User, purpose: str) -> None:
    """After the commit: send ``user``'s link now and tell the administrator how it went."""
    reason = send_now(link_message(user)(purpose))
    if not has_request_context():
        return
    if reason is None and purpose == INVITE:
        flash(_("An invitation is on its way to %(email)s.", email=user.email), "info")
    elif reason is None:
        flash(_("A link to choose a new password is on its way to %(email)s.",
                email=user.email), "info")
    elif purpose == INVITE:
        flash(_("The invitation to %(email)s could not be sent: %(reason)s.",
                email=user.email, reason=reason), "error")
    else:
        flash(_("The link to choose a new password could not be sent to %(email)s: "
                "%(reason)s.", email=user.email, reason=reason), "error")


def request_password_reset(email: str) -> None:
    """Mail a reset link, once the request commits, if an active account uses ``email``;
    do nothing otherwise.

    The caller answers the same either way; mail leaves in the background, so the time taken
    does not tell either.
    """
    user = find_by_email(email)
    if user is None or user.is_suspended:
        return
    build = link_message(user)
    transaction.after_commit(lambda: mail.deliver(build(RESET)))


def send_reset_link(user: User) -> None:
    """An admin sends a user a reset link: sent after the commit, the outcome flashed."""
    transaction.after_commit(lambda: _report(user, RESET))


def send_invitation(user: User) -> None:
    """Mail a new user the link to choose their password, after the commit; the admin is
    told whether it was sent (and why not)."""
    transaction.after_commit(lambda: _report(user, INVITE))
