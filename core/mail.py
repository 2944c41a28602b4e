"""Outgoing mail through the SMTP server of ``QALITEL_SMTP_*`` (stdlib ``smtplib``).

Messages are built in the request (templates, translations) and handed to a short-lived
background thread by default, so that the time a page takes never depends on whether a
message was sent (a password-reset request must not reveal which emails exist) nor on the
mail server's speed. ``app.config["MAIL_BACKGROUND"] = False`` sends in the request.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import threading
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from flask import current_app

from core.config import Settings
from core.config import settings as current_settings

log = logging.getLogger(__name__)
SMTP_TIMEOUT = 15


def build_message(settings: Settings, to: str, subject: str, body: str) -> EmailMessage:
    """A plain-text UTF-8 message from the configured sender."""
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=settings.mail_from.rpartition("@")[2] or None)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(body)
    return message


def send_now(settings: Settings, message: EmailMessage) -> None:
    """Deliver one message; raises ``smtplib.SMTPException`` or ``OSError`` on failure."""
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=SMTP_TIMEOUT) as smtp:
        smtp.ehlo()
        if settings.smtp_starttls:
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
        if settings.smtp_user:
            smtp.login(settings.smtp_user, settings.smtp_password)
        smtp.send_message(message)


def _send_logged(settings: Settings, message: EmailMessage) -> bool:
    try:
        send_now(settings, message)
    except (smtplib.SMTPException, OSError) as exc:
        log.error("mail to %s not sent: %s", message["To"], exc)
        return False
    return True


def deliver(message: EmailMessage) -> bool | None:
    """Send ``message`` in the background (default) or now.

    Returns whether a synchronous send worked, None when sent in the background. Failures
    are logged, never raised: the caller's answer must not change with them.
    """
    settings: Settings = current_settings()
    if not current_app.config.get("MAIL_BACKGROUND", True):
        return _send_logged(settings, message)
    threading.Thread(target=_send_logged, args=(settings, message),
                     name="qalitel-mail", daemon=True).start()
    return None
