"""E-mail to a client's administrators when SCOQI asks them for maintenance access.

Hooked on :data:`maintenance.requests.on_request_created`. Finding the administrators means
reading the tenant's own ``users`` table, which belongs to the app: the app registers, with
:func:`on_list_admins`, a function that lists them from a tenant session (names and e-mail
addresses of active admins, nothing else); it runs here through ``tenant_context``. Without
one registered, nobody is mailed (and the failure is logged).
Messages go through :mod:`core.mail` in the platform's default language, one per admin.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _

from core import config, mail
from core.config import Settings
from core.links import tenant_link
from maintenance.models import MaintenanceRequest
from maintenance.requests import aware, on_request_created
from tenants.context import current_tenant, has_tenant, tdb, tenant_context
from tenants.engines import TenantInfo
from tenants.registry import Tenant

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recipient:
    name: str
    email: str


#: Given a tenant database session, that tenant's active administrators as (name, e-mail).
AdminLister = Callable[[Any], list[tuple[str, str]]]
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
    return [Recipient(name=name, email=email) for name, email in rows]


def decision_url(settings: Settings, slug: str) -> str:
    """Where an admin decides: built from the configuration, never from a request's Host."""
    return tenant_link(settings, slug, "/maintenance/")


def _body(req: MaintenanceRequest, admin: Recipient, link: str) -> str:
    engineer = req.engineer
    lines = [
        _("Hello %(name)s,", name=admin.name), "",
        _("%(engineer)s (%(email)s), an engineer of SCOQI, asks for maintenance access to the "
          "data of %(company)s.", engineer=engineer.name, email=engineer.email,
          company=req.tenant.name), "",
        _("Reason: %(reason)s", reason=req.reason),
    ]
    if req.ticket:
        lines.append(_("Ticket: %(ticket)s", ticket=req.ticket))
    lines += [
        _("Scope: %(scope)s", scope=req.scope.value),
        _("Duration: %(hours)s hours", hours=format(req.hours, "g")), "",
        _("Nobody at SCOQI can open your data unless an administrator of %(company)s approves. "
          "Approve (possibly shorter, or read-only) or deny it before %(deadline)s UTC:",
          company=req.tenant.name,
          deadline=aware(req.pending_until).strftime("%Y-%m-%d %H:%M")),
        "", link, "",
        _("Without a decision, the request expires by itself. Every access is written to your "
          "maintenance access log."),
    ]
    return "\n".join([*lines, "", "-- ", "QALITEL", ""])


def notify_admins(req: MaintenanceRequest) -> list[str]:
    """Send the request to every active admin of its tenant; returns their addresses."""
    settings: Settings = config.settings()
    admins = client_admins(req.tenant)
    link = decision_url(settings, req.tenant.slug)
    with force_locale(current_app.config.get("BABEL_DEFAULT_LOCALE", "fr")):
        for admin in admins:
            subject = _("Maintenance access requested for %(company)s",
                        company=req.tenant.name)
            mail.deliver(mail.build_message(settings, admin.email, subject,
                                            _body(req, admin, link)))
    if not admins:
        log.warning("tenant %s has no active admin to notify of request %s",
                    req.tenant.slug, req.public_id)
    return [admin.email for admin in admins]


if notify_admins not in on_request_created:
    on_request_created.append(notify_admins)
