"""E-mail to a client's administrators when SCOQI asks them for maintenance access.

Hooked on :data:`maintenance.requests.on_request_created`. Finding the administrators means
reading the tenant's own ``users`` table: a system action done here, in ``maintenance/``,
through ``tenant_context`` (names and e-mail addresses of active admins, nothing else).
Messages go through :mod:`core.mail` in the platform's default language, one per admin.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import select

from core import config, mail
from core.config import Settings
from core.links import tenant_link
from maintenance.models import MaintenanceRequest
from maintenance.requests import aware, on_request_created
from qalitel.users.models import Profile, User
from tenants.context import current_tenant, has_tenant, tdb, tenant_context
from tenants.engines import TenantInfo
from tenants.registry import Tenant

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recipient:
    name: str
    email: str


def _query():
    return (select(User.name, User.email)
            .where(User.profile == Profile.ADMIN, User.suspended_at.is_(None))
            .order_by(User.id))


def client_admins(tenant: Tenant) -> list[Recipient]:
    """The active administrators of ``tenant``, read from its own database."""
    if has_tenant():
        if current_tenant().id != tenant.id:
            raise RuntimeError("another tenant is current: its admins cannot be read here")
        rows = tdb.execute(_query()).all()
    else:
        with tenant_context(TenantInfo.from_row(tenant)) as ctx:
            rows = ctx.session.execute(_query()).all()
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
