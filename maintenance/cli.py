"""``qalitel audit``: verify and export the maintenance access logs."""

from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext

audit_group = click.Group("audit", help="The tamper-evident maintenance access logs.")


def _tenant_or_exit(slug: str):
    from tenants.registry import InvalidSlugError
    from tenants.service import TenantNotFoundError, get_tenant

    try:
        return get_tenant(slug)
    except (InvalidSlugError, TenantNotFoundError) as exc:
        click.secho(f"Error: {exc}", fg="red", err=True)
        sys.exit(2)


@audit_group.command("verify")
@click.argument("slug", required=False)
@with_appcontext
def verify_command(slug: str | None) -> None:
    """Check the hash chain and sealed head of SLUG's log (every tenant's without SLUG).

    Exits 1 naming the first bad entry (tenant, seq, reason), or when the database
    triggers keeping the log append-only are missing. Without SLUG, the purge records of
    destroyed tenants are checked too.
    """
    from maintenance import audit

    if slug:
        tenant = _tenant_or_exit(slug)
        verdicts = [(tenant, audit.verify(tenant.id))]
    else:
        verdicts = audit.verify_all()
    broken = 0
    for tenant, result in verdicts:
        if result.ok:
            click.echo(f"{tenant.slug}: {result.describe()}")
        else:
            broken += 1
            click.secho(f"{tenant.slug}: seq {result.first_bad_seq}: {result.reason} "
                        f"({result.count} valid entries before it)", fg="red")
    if not slug:
        from maintenance.audit_verify import verify_purges

        for purge, result in verify_purges():
            name = f"{purge.tenant_slug} (destroyed, uid {purge.tenant_uid})"
            if result.ok:
                click.echo(f"{name}: {result.describe()}")
            else:
                broken += 1
                click.secho(f"{name}: {result.reason}", fg="red")
    missing = audit.missing_guards()
    if missing:
        click.secho(f"WARNING: append-only triggers missing or disabled: {', '.join(missing)}",
                    fg="red", err=True)
    if broken or missing:
        sys.exit(1)


@audit_group.command("export")
@click.argument("slug")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), default=None,
              help="File to write (standard output without it).")
@with_appcontext
def export_command(slug: str, output: str | None) -> None:
    """Write SLUG's access log as JSON lines (check it with maintenance/verify_log.py)."""
    from maintenance import audit

    tenant = _tenant_or_exit(slug)
    lines = audit.iter_jsonl(tenant.id)
    if output is None:
        for line in lines:
            click.echo(line, nl=False)
        return
    count = 0
    with open(output, "w", encoding="utf-8", newline="\n") as handle:
        for line in lines:
            handle.write(line)
            count += 1
    click.echo(f"{count} entries of {tenant.slug} written to {output}", err=True)
