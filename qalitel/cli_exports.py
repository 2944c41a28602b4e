"""``qalitel tenants export SLUG`` and ``qalitel tenants import FILE --as SLUG`` (registered on
the ``tenants`` group by :mod:`qalitel.cli_tenancy`).

Bad input (unknown slug, a missing or bad ``--reason``, an output that exists or whose folder
does not, a refused archive, one not signed by this platform without ``--unsigned``) exits
2 with a clear message and leaves nothing behind. Each export leaves an entry in the
tenant's access log, written before the file is put in place (:mod:`qalitel.exports.operator`):
when the log cannot be written, no export is (exit 1).
"""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask.cli import with_appcontext

from qalitel.cli import fail, settings


@click.command("export")
@click.argument("slug")
@click.option("--output", "output", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Archive to write (default: <instance>/exports/"
                                 "<slug>-export-<UTC time>.zip, private to this user).")
@click.option("--reason", "reason", required=True,
              help="Why the data is exported (one line): the client reads it, with your OS "
                   "user, host and the file's SHA-256, in its access log.")
@click.option("--force", is_flag=True, help="Replace the output file if it exists.")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest summary as JSON.")
@with_appcontext
def export_command(slug: str, output: Path | None, reason: str, force: bool,
                   as_json: bool) -> None:
    """Write a ZIP of everything tenant SLUG holds: tables, people, files, manifest."""
    from core import clock
    from qalitel.exports.operator import (
        ExportNotLoggedError,
        ExportReasonError,
        check_reason,
        logged_export,
    )
    from qalitel.exports.tenant import ExportBuildError
    from tenants.registry import LIVE_STATUSES, InvalidSlugError
    from tenants.service import TenantNotFoundError, get_tenant

    try:
        tenant = get_tenant(slug)
        check_reason(reason)
    except (InvalidSlugError, TenantNotFoundError, ExportReasonError) as exc:
        fail(str(exc), 2)
        return
    if tenant.status not in LIVE_STATUSES:
        fail(f"tenant {slug!r} is {tenant.status.value}: nothing to export", 2)
    when = clock.now()
    if output is None:
        from qalitel.exports.jobs import exports_dir

        output = exports_dir(settings()) / f"{tenant.slug}-export-{when:%Y%m%d-%H%M%S}.zip"
    if not output.parent.is_dir():
        fail(f"folder {output.parent} does not exist", 2)
    if output.exists() and not force:
        fail(f"{output} already exists (pass --force to replace it)", 2)
    if output.is_dir():
        fail(f"{output} is a folder", 2)
    try:
        manifest = logged_export(settings(), tenant, output, reason, replace=force).manifest
    except FileExistsError:
        fail(f"{output} already exists (pass --force to replace it)", 2)
        return
    except ExportNotLoggedError as exc:
        fail(f"export of {slug} refused: {exc}")
        return
    except (ExportBuildError, OSError) as exc:
        fail(f"export of {slug} failed: {exc}")
        return
    summary = {"slug": tenant.slug, "output": str(output), "size": output.stat().st_size,
               "schema_revision": manifest["schema_revision"],
               "rows": {name: t["rows"] for name, t in manifest["tables"].items()},
               "files": len(manifest["files"])}
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo(f"{tenant.slug}: exported {sum(summary['rows'].values())} rows in "
               f"{len(summary['rows'])} tables and {summary['files']} files to {output} "
               f"({summary['size']} bytes)")


@click.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--as", "new_slug", required=True, help="Slug of the new tenant.")
@click.option("--name", default=None, help="Company name (default: the archive's).")
@click.option("--backend", type=click.Choice(["sqlite", "postgresql"]), default=None)
@click.option("--server", "server_name", default=None, help="Name of a registered server.")
@click.option("--unsigned", is_flag=True,
              help="Import even an archive this platform did not sign, or whose signature "
                   "does not match (altered, or exported elsewhere). Refused without it.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@with_appcontext
def import_command(file: Path, new_slug: str, name: str | None, backend: str | None,
                   server_name: str | None, unsigned: bool, as_json: bool) -> None:
    """Create tenant --as SLUG from an export archive (checked whole before anything)."""
    from qalitel.exports.archive import ExportArchiveError
    from qalitel.exports.tenant_import import import_tenant
    from tenants.registry import InvalidSlugError, ProvisioningError

    try:
        done = import_tenant(settings(), file, new_slug, name, backend=backend,
                             server_name=server_name, unsigned=unsigned)
    except (ExportArchiveError, InvalidSlugError) as exc:
        fail(f"{file}: {exc}" if isinstance(exc, ExportArchiveError) else str(exc), 2)
        return
    except ProvisioningError as exc:
        fail(str(exc), 2)
        return
    if done.signature is not None:
        click.echo(f"WARNING: UNSIGNED IMPORT (--unsigned): {done.signature}. Tenant "
                   f"{done.slug} holds whatever the archive says, unchecked by this "
                   "platform's signature: check its users and profiles before opening it.",
                   err=True)
    if as_json:
        click.echo(json.dumps({"slug": done.slug, "backend": done.backend,
                               "schema_revision": done.schema_revision, "rows": done.rows,
                               "files": done.files, "signed": done.signature is None,
                               "signature_problem": done.signature}, indent=2))
        return
    click.echo(f"tenant {done.slug} imported on {done.backend}: "
               f"{sum(done.rows.values())} rows, {done.files} files")
