"""E-mail to a client's administrators when SCOQI asks them for maintenance access.

Hooked on :data:`maintenance.requests.on_request_created`, which runs once the request is
stored and logged. Finding the administrators means reading the tenant's own ``users`` table,
which belongs to the app: the app registers, with :func:`on_list_admins`, a function that
lists them from a tenant session (name, e-mail address and the language of their last
sign-in, of active admins, nothing else); it runs here through ``tenant_context``. Without
one registered, nobody is mailed (and the failure is logged).

Each admin gets one message, ``templates/mail/maintenance_request.txt`` rendered in their
language (the platform's default for one who never signed in). Messages are prepared at once
and sent by :func:`core.platform_transaction.after_commit`: only when the platform
transaction in which the request was announced commits, never when it rolls back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from babel import Locale, UnknownLocaleError
from flask import current_app, render_template
from flask_babel import force_locale
from flask_babel import gettext as _

from core import config, dates, mail, platform_transaction
from core.config import Settings
from core.links import tenant_link
from maintenance.models import MaintenanceRequest
from maintenance.requests import on_request_created
from tenants.context import current_tenant, has_tenant, tdb, tenant_context
from tenants.engines import TenantInfo
from tenants.registry import Tenant

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recipient:
    name: str
    email: str
    locale: str | None = None


#: Given a tenant database session, that tenant's active administrators as (name, e-mail,
#: locale of their last sign-in or None).
AdminLister = Callable[[Any], list[tuple[str, str, str | None]]]
_listers: list[AdminLister] = []


def on_list_admins(lister: AdminLister) -> AdminLister:
    """Register the app's way of listing a tenant's active administrators (the last wins)."""
    _listers[:] = [lister]
    return lister


def client_admins(tenant: Tenant) -> list[Recipient]:
    """The active administrators of ``tenant``, read from its own database."""
    if not _listers:
        raise RuntimeError("no way to list a tenant's administrators was registered")
    lister = _listers[0]
    if has_tenant():
        if current_tenant().id != tenant.id:
            raise RuntimeError("another tenant is current: its admins cannot be read here")
        rows = lister(tdb)
    else:
        with tenant_context(TenantInfo.from_row(tenant)) as ctx:
            rows = lister(ctx.session)
    return [Recipient(*row) for row in rows]


def decision_url(settings: Settings, slug: str) -> str:
    """Where an admin decides: built from the configuration, never from a request's Host."""
    return tenant_link(settings, slug, "/maintenance/")


def _locale(admin: Recipient) -> str:
    """The admin's language, or the platform's default when none (or no valid one) is known."""
    default = current_app.config.get("BABEL_DEFAULT_LOCALE", "fr")
    if not admin.locale:
        return default
    try:
        return str(Locale.parse(admin.locale))
    except (ValueError, TypeError, UnknownLocaleError):
        return default


def _message(settings: Settings, req: MaintenanceRequest, admin: Recipient,
             link: str) -> EmailMessage:
    company = req.tenant.name
    with force_locale(_locale(admin)):
        subject = _("Maintenance access requested for %(company)s", company=company)
        body = render_template(
            "mail/maintenance_request.txt", admin=admin, req=req, engineer=req.engineer,
            company=company, link=link, hours=format(req.hours, "g"),
            deadline=dates.datetime_text(req.pending_until, tz=dates.default_zone()))
    return mail.build_message(settings, admin.email, subject, body)


def notify_admins(req: MaintenanceRequest) -> list[str]:
    """Prepare the request's message to every active admin of its tenant, to be sent when
    the platform transaction commits; returns their addresses."""
    settings: Settings = config.settings()
    admins = client_admins(req.tenant)
    link = decision_url(settings, req.tenant.slug)
    messages = [_message(settings, req, admin, link) for admin in admins]
    if messages:
        platform_transaction.after_commit(lambda: [mail.deliver(m) for m in messages])
    else:
        log.warning("tenant %s has no active admin to notify of request %s",
                    req.tenant.slug, req.public_id)
    return [admin.email for admin in admins]


if notify_admins not in on_request_created:
    on_request_created.append(notify_admins)
