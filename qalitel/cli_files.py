"""``qalitel files sweep``: remove the attached files no row refers to any more (left by
rolled-back uploads and by removals within the grace period). Safe to run from cron."""

from __future__ import annotations

import json

import click
from flask.cli import with_appcontext

from qalitel.cli import fail, settings

files_group = click.Group("files", help="Files attached to non-conformities and actions.")


def sweep_tenants(tenants: list) -> dict[str, int]:
    """Sweep each tenant's unreferenced files; how many went, by slug (also a scheduled job)."""
    from qalitel.records.files.service import sweep
    from tenants.context import tdb, tenant_context
    from tenants.engines import TenantInfo

    removed: dict[str, int] = {}
    for tenant in tenants:
        with tenant_context(TenantInfo.from_row(tenant)):
            removed[tenant.slug] = len(sweep(settings(), tenant.uid, tdb))
    return removed


@files_group.command("sweep")
@click.argument("slugs", nargs=-1)
@click.option("--all", "every", is_flag=True, help="Every active or suspended tenant.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@with_appcontext
def files_sweep(slugs: tuple[str, ...], every: bool, as_json: bool) -> None:
    """Remove unreferenced files older than the grace period (an hour)."""

    from tenants.registry import InvalidSlugError
    from tenants.service import TenantNotFoundError, get_tenant, live_tenants

    if bool(slugs) == every:
        fail("name tenants (SLUG…) or give --all, not both")
    try:
        tenants = [get_tenant(slug) for slug in slugs] if slugs else live_tenants()
    except (TenantNotFoundError, InvalidSlugError) as exc:
        fail(str(exc))
    removed = sweep_tenants(tenants)
    if as_json:
        click.echo(json.dumps({"removed": removed}, sort_keys=True))
    else:
        for slug, count in removed.items():
            click.echo(f"{slug}: {count} unreferenced file(s) removed")
