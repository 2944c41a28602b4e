"""The platform's commands: ``init``, ``tenants …``, ``servers …`` and ``demo``.

Every import beyond click happens inside a command, so listing or helping costs nothing.
"""

from __future__ import annotations

import json

import click
from flask.cli import with_appcontext

from qalitel.cli import fail, settings


@click.command("init")
@with_appcontext
def init_command() -> None:
    """Create or upgrade the platform database (and the tenant templates)."""
    from tenants.servers import ensure_server
    from tenants.service import init_platform
    from tenants.templates import ensure_sqlite_template, migrate_pg_template

    revision = init_platform()
    click.echo(f"platform database at revision {revision}")
    ensure_sqlite_template(settings())
    if settings().tenant_server_url:
        server = ensure_server(settings(), "default", settings().tenant_server_url)
        revision = migrate_pg_template(settings(), server)
        click.echo(f"PostgreSQL template on server default at {revision}")


class _LazyTenantsGroup(click.Group):
    """``tenants``, whose closure and export commands are imported only when named (their
    modules load the app's models; ``tenants list`` need not)."""

    LAZY = {"close": ("qalitel.cli_closure", "close_command"),
            "reopen": ("qalitel.cli_closure", "reopen_command"),
            "deletion-record": ("qalitel.cli_closure", "deletion_record_command"),
            "export": ("qalitel.cli_exports", "export_command"),
            "import": ("qalitel.cli_exports", "import_command")}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.LAZY))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.LAZY:
            import importlib

            module, attribute = self.LAZY[cmd_name]
            return getattr(importlib.import_module(module), attribute)
        return super().get_command(ctx, cmd_name)


tenants_group = _LazyTenantsGroup("tenants", help="Client companies and their databases.")
servers_group = click.Group("servers", help="PostgreSQL servers tenants are placed on.")


@tenants_group.command("create")
@click.argument("slug")
@click.option("--name", required=True, help="Company name shown to its users.")
@click.option("--admin-email", required=True)
@click.option("--admin-password", default=None,
              help="Without it, one is generated and printed once.")
@click.option("--admin-name", default=None)
@click.option("--backend", type=click.Choice(["sqlite", "postgresql"]), default=None)
@click.option("--server", "server_name", default=None, help="Name of a registered server.")
@with_appcontext
def tenants_create(slug: str, name: str, admin_email: str, admin_password: str | None,
                   admin_name: str | None, backend: str | None, server_name: str | None) -> None:
    """Create a tenant with its own database and first client admin."""
    from core.validation import InvalidInput, check_password, in_english
    from tenants.provisioning import create_tenant
    from tenants.registry import InvalidSlugError, ProvisioningError

    if admin_password is not None:
        try:
            check_password(admin_password)
        except InvalidInput as exc:
            fail(in_english(exc))
    try:
        result = create_tenant(settings(), slug, name, admin_email, admin_password,
                               admin_name=admin_name, backend=backend, server_name=server_name)
    except (InvalidSlugError, ProvisioningError) as exc:
        fail(str(exc))
        return
    tenant = result.tenant
    click.echo(f"tenant {tenant.slug} created on {tenant.backend.value} "
               f"({result.without_hash_ms:.0f} ms + {result.timings['hash']:.0f} ms hashing)")
    click.echo(f"admin: {result.admin_email}")
    if result.generated_password:
        click.echo(f"password (shown once): {result.admin_password}")


def _tenant_dict(tenant) -> dict:
    return {"slug": tenant.slug, "name": tenant.name, "status": tenant.status.value,
            "backend": tenant.backend.value, "database": tenant.database_name,
            "server": tenant.server.name if tenant.server else None,
            "schema_revision": tenant.schema_revision,
            "created_at": tenant.created_at.isoformat() if tenant.created_at else None,
            "closed_at": tenant.closed_at.isoformat() if tenant.closed_at else None,
            "purge_due_at": str(tenant.purge_due_at) if tenant.purge_due_at else None}


@tenants_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def tenants_list(as_json: bool) -> None:
    """List tenants."""
    from tenants.service import list_tenants

    rows = [_tenant_dict(t) for t in list_tenants()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        click.echo(f"{row['slug']:<40} {row['status']:<12} {row['backend']:<10} "
                   f"{row['schema_revision'] or '-':<8} {row['name']}")


def _set_status(slug: str, status_name: str) -> None:
    from tenants.registry import InvalidSlugError, TenantStatus
    from tenants.service import TenantNotFoundError, set_status

    try:
        tenant = set_status(slug, TenantStatus(status_name))
    except (InvalidSlugError, TenantNotFoundError, ValueError) as exc:
        fail(str(exc))
        return
    click.echo(f"tenant {tenant.slug} is {tenant.status.value}")


@tenants_group.command("suspend")
@click.argument("slug")
@with_appcontext
def tenants_suspend(slug: str) -> None:
    """Suspend a tenant: its users get a 'suspended' page, its data is kept."""
    _set_status(slug, "suspended")


@tenants_group.command("resume")
@click.argument("slug")
@with_appcontext
def tenants_resume(slug: str) -> None:
    """Resume a suspended tenant."""
    _set_status(slug, "active")


@tenants_group.command("migrate")
@click.argument("slugs", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Every active or suspended tenant.")
@click.option("--jobs", type=click.IntRange(1, 64), default=None,
              help="Parallel upgrades (capped by QALITEL_MIGRATE_CONNECTION_BUDGET).")
@click.option("--retry-failed", is_flag=True, help="Only tenants whose last migration failed.")
@with_appcontext
def tenants_migrate(slugs: tuple[str, ...], all_: bool, jobs: int | None,
                    retry_failed: bool) -> None:
    """Migrate the template, then tenant databases, to the head revision."""
    from tenants.migrate import migrate_tenants
    from tenants.registry import InvalidSlugError

    if bool(slugs) == all_:
        fail("name tenants or pass --all (not both)", 2)
    try:
        report = migrate_tenants(settings(), list(slugs) or None, jobs=jobs,
                                 retry_failed=retry_failed)
    except (InvalidSlugError, LookupError) as exc:
        fail(str(exc))
        return
    click.echo(f"head {report.head}: {len(report.migrated)} migrated, {len(report.skipped)} "
               f"skipped (already at head), {len(report.failed)} failed, "
               f"{report.workers} worker(s), {report.duration_ms:.0f} ms")
    for outcome in report.migrated:
        click.echo(f"  migrated {outcome.slug}: {outcome.from_revision} -> "
                   f"{outcome.to_revision} ({outcome.duration_ms:.0f} ms)")
    if report.failed:
        for outcome in report.failed:
            click.secho(f"  FAILED {outcome.slug}: {outcome.summary}", fg="red", err=True)
        fail(f"{len(report.failed)} failed: {', '.join(o.slug for o in report.failed)} "
             "(details in the migration ledger; fix, then rerun with --retry-failed)")


@tenants_group.command("sweep")
@click.option("--older-than", type=click.IntRange(0, None), default=600, show_default=True,
              help="Seconds a provisioning may run before its leftovers are swept.")
@with_appcontext
def tenants_sweep(older_than: int) -> None:
    """Remove leftovers of crashed provisionings (rows, databases, roles, files)."""
    from tenants.lifecycle import sweep
    from tenants.registry import ProvisioningError

    try:
        removed = sweep(settings(), older_than_s=older_than)
    except ProvisioningError as exc:
        fail(str(exc))
        return
    click.echo("\n".join(removed) if removed else "nothing to sweep")


@servers_group.command("add")
@click.argument("name")
@click.argument("url")
@with_appcontext
def servers_add(name: str, url: str) -> None:
    """Register a PostgreSQL server by its admin DSN (stored encrypted)."""
    import re

    from tenants.servers import ensure_server
    from tenants.templates import migrate_pg_template

    if not re.fullmatch(r"[a-z][a-z0-9-]{0,63}", name):
        fail("server names are lowercase letters, digits and '-'")
    try:
        server = ensure_server(settings(), name, url)
        revision = migrate_pg_template(settings(), server)
    except Exception as exc:
        fail(f"cannot use server {name}: {exc}")
        return
    click.echo(f"server {name} added; template at {revision}")


@servers_group.command("list")
@with_appcontext
def servers_list() -> None:
    """List servers (without their credentials)."""
    from sqlalchemy import select
    from sqlalchemy.engine import make_url

    from core.db import db
    from tenants.registry import DatabaseServer
    from tenants.servers import server_url

    for server in db.session.execute(select(DatabaseServer)).scalars():
        url = make_url(server_url(settings(), server))
        click.echo(f"{server.name:<20} {url.host}:{url.port or 5432} "
                   f"template {server.template_revision or '-'}")


@click.command("demo")
@with_appcontext
def demo_command() -> None:
    """Prepare the embedded default with a demo tenant; print its accounts once."""
    from qalitel.demo import ensure_demo

    for line in ensure_demo(settings()):
        click.echo(line)


