"""``qalitel staff …`` (engineers' accounts) and ``qalitel maintenance …`` (requests, cron).

Nothing here approves, denies or opens a tenant database: approval is the client
administrator's, and the only door to tenant data is :mod:`maintenance.access`.
"""

from __future__ import annotations

import json
import sys

import click
from flask import Flask
from flask.cli import with_appcontext
from sqlalchemy import select

from core.platform_transaction import unit_of_work
from maintenance.models import RequestStatus, Scope, StaffUser

staff_group = click.Group("staff", help="SCOQI engineers' accounts (console at /staff/).")
maintenance_group = click.Group("maintenance",
                                help="Maintenance requests (clients approve them, not us).")


def _fail(message: str, code: int = 1) -> None:
    click.secho(f"Error: {message}", fg="red", err=True)
    sys.exit(code)


def _staff_or_fail(email: str) -> StaffUser:
    from maintenance.staff import find_staff

    found = find_staff(email)
    if found is None:
        _fail(f"no staff account {email[:254]!r}")
    return found  # type: ignore[return-value]


@staff_group.command("create")
@click.argument("email")
@click.option("--name", default=None, help="Full name, shown to clients in their access log.")
@click.option("--password", default=None,
              help="For scripts; without it, the password is prompted (at least 12 characters).")
@with_appcontext
def staff_create(email: str, name: str | None, password: str | None) -> None:
    """Create an engineer's account and print its TOTP enrolment URI (once)."""
    from maintenance.staff import PASSWORD_MIN, StaffError, create_staff

    if password is None:
        password = click.prompt(f"Password (at least {PASSWORD_MIN} characters)",
                                hide_input=True, confirmation_prompt=True)
    try:
        staff, uri = create_staff(email, name, password or "")
    except StaffError as exc:
        _fail(str(exc))
        return
    click.echo(f"staff {staff.email} ({staff.name}) created")
    click.echo("Scan this URI in an authenticator app (shown once; it holds the TOTP secret):")
    click.echo(uri)


@staff_group.command("list")
@with_appcontext
def staff_list() -> None:
    """List engineers' accounts (no secrets)."""
    from core.db import db

    for staff in db.session.execute(select(StaffUser).order_by(StaffUser.email)).scalars():
        last = staff.last_login_at.strftime("%Y-%m-%d %H:%M") if staff.last_login_at else "-"
        click.echo(f"{staff.email:<40} {'active' if staff.active else 'inactive':<9} "
                   f"last login {last:<17} {staff.name}")


@staff_group.command("deactivate")
@click.argument("email")
@with_appcontext
def staff_deactivate(email: str) -> None:
    """Deactivate an account and end its console sessions."""
    from maintenance.staff import set_active

    staff = _staff_or_fail(email)
    with unit_of_work():
        set_active(staff, False)
    click.echo(f"staff {staff.email} deactivated")


@staff_group.command("activate")
@click.argument("email")
@with_appcontext
def staff_activate(email: str) -> None:
    """Reactivate a deactivated account."""
    from maintenance.staff import set_active

    staff = _staff_or_fail(email)
    with unit_of_work():
        set_active(staff, True)
    click.echo(f"staff {staff.email} active")


@staff_group.command("reset-totp")
@click.argument("email")
@with_appcontext
def staff_reset_totp(email: str) -> None:
    """Give an account a new TOTP secret (ends its sessions); prints the enrolment URI."""
    from maintenance.staff import reset_totp

    staff = _staff_or_fail(email)
    with unit_of_work():
        uri = reset_totp(staff)
    click.echo(uri)


@maintenance_group.command("request")
@click.option("--tenant", "slug", required=True, help="Slug of the client.")
@click.option("--engineer", required=True, help="Email of the staff account asking.")
@click.option("--reason", required=True, help="Why (at most 2000 characters; the client "
                                              "reads it).")
@click.option("--ticket", default=None, help="Ticket reference (at most 100 characters).")
@click.option("--scope", type=click.Choice([s.value for s in Scope]), default=Scope.READ.value,
              show_default=True)
@click.option("--hours", type=float, default=None,
              help="Length of the window (default QALITEL_MAINTENANCE_DEFAULT_HOURS, at most "
                   "QALITEL_MAINTENANCE_MAX_HOURS).")
@with_appcontext
def maintenance_request(slug: str, engineer: str, reason: str, ticket: str | None,
                        scope: str, hours: float | None) -> None:
    """Ask a client for maintenance access; prints the request id."""
    from maintenance.audit import AuditWriteError
    from maintenance.requests import RequestError, create_request

    staff = _staff_or_fail(engineer)
    try:
        made = create_request(slug, staff, reason, ticket=ticket, scope=scope, hours=hours)
    except RequestError as exc:
        _fail(str(exc))
        return
    except AuditWriteError as exc:
        _fail(f"the access log cannot be written, no request made: {exc}")
        return
    click.echo(made.public_id)
    click.echo(f"pending until {made.pending_until:%Y-%m-%d %H:%M} UTC: the client's "
               "administrators decide", err=True)


@maintenance_group.command("expire")
@with_appcontext
def maintenance_expire() -> None:
    """Expire pending requests past their deadline and grants past their end (for cron);
    each expiry is logged, and an expired grant's PostgreSQL role is cut off. Revocations
    the database could not take earlier are stored and logged first."""
    from maintenance.grants import expire_grants
    from maintenance.requests import expire_overdue
    from maintenance.revocations import apply_pending

    applied = apply_pending()
    if applied:
        click.echo(f"{applied} pending revocation(s) stored and logged")
    expired = expire_overdue()
    click.echo(f"{len(expired)} request(s) expired")
    for request in expired:
        click.echo(f"  {request.public_id} ({request.tenant.slug})")
    ended = expire_grants()
    click.echo(f"{len(ended)} grant(s) expired")
    for grant in ended:
        click.echo(f"  grant {grant.id} of {grant.request.public_id} ({grant.tenant.slug})")


@maintenance_group.command("list")
@click.option("--tenant", "slug", default=None)
@click.option("--status", type=click.Choice([s.value for s in RequestStatus]), default=None)
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def maintenance_list(slug: str | None, status: str | None, as_json: bool) -> None:
    """List maintenance requests (newest first)."""
    from maintenance.requests import all_requests
    from tenants.registry import InvalidSlugError
    from tenants.service import TenantNotFoundError, get_tenant

    tenant_id = None
    if slug is not None:
        try:
            tenant_id = get_tenant(slug).id
        except (InvalidSlugError, TenantNotFoundError) as exc:
            _fail(str(exc))
    rows = [{"id": r.public_id, "tenant": r.tenant.slug, "engineer": r.engineer.email,
             "scope": r.scope.value, "hours": r.hours, "status": r.status.value,
             "ticket": r.ticket, "created_at": r.created_at.isoformat(),
             "pending_until": r.pending_until.isoformat()}
            for r in all_requests(tenant_id, RequestStatus(status) if status else None)]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        click.echo(f"{row['id']}  {row['tenant']:<20} {row['status']:<9} {row['scope']:<10} "
                   f"{row['hours']:g} h  {row['engineer']}")


def init_app(app: Flask) -> None:
    app.cli.add_command(staff_group)
    app.cli.add_command(maintenance_group)
