"""The demo tenant of the embedded default (``qalitel demo``, which ``make run`` calls).

It holds a French-first company (:mod:`qalitel.demo_data`): a client admin, two managers (one
cleared for the confidential folder through a group), three users, five folders, forty
non-conformities across every status with their history, actions (some overdue), and a
SCOQI demo engineer whose maintenance request waits for the admin's decision.

Idempotent: each part is created only when missing (users by e-mail, folders and records by
name, the engineer by e-mail), so a second run adds and changes nothing. The one exception is
the maintenance request: when the engineer has no *pending* request (the previous one was
decided or expired after ``QALITEL_MAINTENANCE_PENDING_HOURS``), a new one is made, so the
admin always has one to decide. Passwords are generated and printed once, when the account
is created; they cannot be shown again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select

from core.config import Settings
from core.db import db
from tenants.registry import Backend, Tenant

DEMO_SLUG = "demo"


@dataclass
class DemoReport:
    """What one run created; ``accounts``: (role, email, password) of new accounts only."""

    tenant_created: bool = False
    accounts: list[tuple[str, str, str]] = field(default_factory=list)
    engineer: tuple[str, str, str] | None = None
    records: int = 0
    actions: int = 0
    request_id: str | None = None

    @property
    def added_anything(self) -> bool:
        return bool(self.tenant_created or self.accounts or self.engineer or self.records
                    or self.actions or self.request_id)


def _tenant(settings: Settings, report: DemoReport) -> Tenant:
    from qalitel import demo_data as data
    from tenants.provisioning import create_tenant

    row = db.session.execute(select(Tenant).where(Tenant.slug == DEMO_SLUG)).scalar_one_or_none()
    if row is not None:
        return row
    email, name = data.ADMIN
    result = create_tenant(settings, DEMO_SLUG, data.COMPANY, email, admin_name=name,
                           backend=Backend.SQLITE.value)
    report.tenant_created = True
    report.accounts.append(("client admin", email, result.admin_password))
    return result.tenant


def _people(report: DemoReport) -> dict:
    """Every demo user by key, creating the missing ones."""
    from qalitel import demo_data as data
    from qalitel.users.models import Profile
    from qalitel.users.service import create_user, find_by_email
    from tenants.provisioning import generate_password

    people = {"alice": find_by_email(data.ADMIN[0])}
    for key, email, name, profile in data.USERS:
        user = find_by_email(email)
        if user is None:
            password = generate_password()
            user = create_user(email, name, password, Profile(profile))
            report.accounts.append((f"client {profile}", email, password))
        people[key] = user
    return people


def _engineer(report: DemoReport):
    from maintenance.staff import create_staff, find_staff
    from qalitel import demo_data as data
    from tenants.provisioning import generate_password

    email, name = data.ENGINEER
    engineer = find_staff(email)
    if engineer is None:
        password = generate_password()
        engineer, enrolment = create_staff(email, name, password)
        report.engineer = (email, password, enrolment)
    return engineer


def _pending_request(tenant: Tenant, engineer, report: DemoReport) -> None:
    from maintenance.models import MaintenanceRequest, RequestStatus
    from maintenance.requests import create_request, expire_overdue
    from qalitel import demo_data as data

    expire_overdue(tenant.id)
    pending = db.session.execute(select(func.count()).select_from(MaintenanceRequest).where(
        MaintenanceRequest.tenant_id == tenant.id,
        MaintenanceRequest.engineer_id == engineer.id,
        MaintenanceRequest.status == RequestStatus.PENDING)).scalar()
    if not pending:
        made = create_request(tenant, engineer, data.REQUEST_REASON, ticket=data.REQUEST_TICKET,
                              scope="read", hours=2)
        report.request_id = made.public_id


def prepare_demo(settings: Settings) -> DemoReport:
    """Create whatever of the demo is missing; returns what was created."""
    from qalitel import demo_records
    from qalitel.transaction import unit_of_work
    from tenants.context import tenant_context
    from tenants.engines import TenantInfo
    from tenants.service import init_platform

    init_platform()
    report = DemoReport()
    tenant = _tenant(settings, report)
    with tenant_context(TenantInfo.from_row(tenant)), unit_of_work():
        people = _people(report)
        folders = demo_records.ensure_folders(people)
        report.records = demo_records.ensure_records(people, folders)
        report.actions = demo_records.ensure_standalone_actions(people)
    engineer = _engineer(report)
    _pending_request(tenant, engineer, report)
    return report


def describe(settings: Settings, report: DemoReport) -> list[str]:
    """The lines ``qalitel demo`` prints (passwords of new accounts, once)."""
    url = f"{settings.external_url}/t/{DEMO_SLUG}/"
    if not report.added_anything:
        return [f"demo tenant exists at {url}; its accounts were printed when it was created"]
    lines = [f"demo tenant {'created' if report.tenant_created else 'completed'} at {url}"]
    if report.accounts:
        lines.append("accounts (these passwords are shown once):")
        lines += [f"  {role:<15} {email:<26} {password}"
                  for role, email, password in report.accounts]
    if report.engineer:
        email, password, enrolment = report.engineer
        staff_url = f"{settings.external_url}/staff/"
        lines += [f"demo SCOQI engineer at {staff_url} (shown once):",
                  f"  {email}  {password}",
                  f"  authenticator (TOTP) enrolment: {enrolment}"]
    if report.records or report.actions:
        lines.append(f"sample data: {report.records} non-conformities, "
                     f"{report.actions} standalone actions added")
    if report.request_id:
        lines.append(f"maintenance request {report.request_id} waits for the client admin's "
                     f"decision at {url}maintenance/")
    return lines


def ensure_demo(settings: Settings) -> list[str]:
    """Prepare the demo; the lines to print."""
    return describe(settings, prepare_demo(settings))
