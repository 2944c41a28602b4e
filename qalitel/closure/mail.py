"""The closure mail to a tenant's administrators: the purge date, and the export link.

The export belongs to another part of the app, which registers how to get a closing tenant's
export link with :func:`on_closure_export_link` (called before the drop, while the data is
still there). With none registered, or when it gives None, the mail says the export can be
asked from SCOQI until the purge date.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, date, datetime, time

from babel import Locale, UnknownLocaleError
from flask import current_app, render_template
from flask_babel import force_locale
from flask_babel import gettext as _

from core import dates, mail, platform_transaction
from core.config import Settings
from maintenance.notify import Recipient, client_admins
from tenants.registry import Tenant

log = logging.getLogger(__name__)

ExportLink = Callable[[Tenant], "str | None"]
_export_links: list[ExportLink] = []


def on_closure_export_link(hook: ExportLink) -> ExportLink:
    """Register how to get a closing tenant's export link (the last one wins)."""
    _export_links[:] = [hook]
    return hook


def closure_export_link(tenant: Tenant) -> str | None:
    """The registered hook's link for ``tenant``; None without one, or when it fails."""
    if not _export_links:
        return None
    try:
        return _export_links[0](tenant)
    except Exception:
        log.exception("no export link for closing tenant %s", tenant.slug)
        return None


def _locale(admin: Recipient) -> str:
    default = current_app.config.get("BABEL_DEFAULT_LOCALE", "fr")
    try:
        return str(Locale.parse(admin.locale)) if admin.locale else default
    except (ValueError, TypeError, UnknownLocaleError):
        return default


def _start_of(day: date | None) -> datetime | None:
    """The first moment (UTC) of ``day``: the link works until then at the latest."""
    return None if day is None else datetime.combine(day, time(), UTC)


def prepare_mail(settings: Settings, tenant: Tenant, export_link: str | None) -> list[str]:
    """Queue one message per active admin, in their language, sent when the platform
    transaction commits; returns their addresses."""
    messages = []
    zone = dates.default_zone()
    admins = client_admins(tenant)
    for admin in admins:
        with force_locale(_locale(admin)):
            subject = _("%(company)s: your QALITEL space is closed", company=tenant.name)
            body = render_template(
                "mail/tenant_closed.txt", admin=admin, company=tenant.name,
                closed=dates.date_text(tenant.closed_at, tz=zone),
                purge_date=dates.date_text(tenant.purge_due_at),
                purge_moment=dates.datetime_text(_start_of(tenant.purge_due_at), tz=zone),
                grace_ends=dates.datetime_text(tenant.grace_ends_at, tz=zone),
                grace=settings.closure_grace_days, export_link=export_link)
        messages.append(mail.build_message(settings, admin.email, subject, body))
    if messages:
        platform_transaction.after_commit(lambda: [mail.deliver(m) for m in messages])
    return [admin.email for admin in admins]
