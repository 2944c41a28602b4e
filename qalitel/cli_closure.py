"""``qalitel tenants close|reopen|deletion-record``: a client leaving (``qalitel.closure``).

Bad input (unknown slug, a tenant in the wrong state, a bad reason) exits 2 and changes
nothing.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from flask.cli import with_appcontext

from qalitel.cli import fail, settings


def _tenant(slug: str):
    from tenants.registry import InvalidSlugError
    from tenants.service import TenantNotFoundError, get_tenant

    try:
        return get_tenant(slug)
    except (InvalidSlugError, TenantNotFoundError) as exc:
        fail(str(exc), 2)


@click.command("close")
@click.argument("slug")
@click.option("--reason", default=None, help="Why (kept on the registry row, not mailed).")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@with_appcontext
def close_command(slug: str, reason: str | None, as_json: bool) -> None:
    """Close a tenant: its pages answer 410 at once, maintenance access ends, its admins are
    mailed the purge date; its data is dropped after QALITEL_CLOSURE_GRACE_DAYS."""
    from qalitel.closure.service import ClosureError, close_tenant

    tenant = _tenant(slug)
    try:
        done = close_tenant(settings(), tenant, reason)
    except ClosureError as exc:
        fail(str(exc), 2)
        return
    if as_json:
        click.echo(json.dumps(done.as_dict(), indent=2))
    else:
        click.echo(f"tenant {done.slug} is closed; "
                   + ("its database and files are dropped" if done.dropped else
                      f"reopen possible until {done.grace_ends_at:%Y-%m-%d %H:%M} UTC")
                   + f"; every copy gone by {done.purge_due_at}")
        click.echo(f"mailed: {', '.join(done.mailed) or 'nobody (no active admin)'}")
    if done.drop_error:
        fail(f"the drop failed (the next closure job retries): {done.drop_error}")


@click.command("reopen")
@click.argument("slug")
@with_appcontext
def reopen_command(slug: str) -> None:
    """Bring a closed tenant back during its grace period."""
    from qalitel.closure.service import ClosureError, reopen_tenant

    tenant = _tenant(slug)
    try:
        reopen_tenant(settings(), tenant)
    except ClosureError as exc:
        fail(str(exc), 2)
        return
    click.echo(f"tenant {slug} is active again")


@click.command("deletion-record")
@click.argument("slug", required=False)
@click.option("--json", "as_json", is_flag=True, help="The record as signed JSON.")
@click.option("--verify", "verify_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Check the signature of a record's text instead.")
@click.option("--public-key", is_flag=True, help="Print the public key that checks signatures.")
@with_appcontext
def deletion_record_command(slug: str | None, as_json: bool, verify_file: Path | None,
                            public_key: bool) -> None:
    """Print a closed tenant's record of deletion: what was removed, where, when and by
    which job, signed with the platform's Ed25519 key."""
    from core import crypto
    from qalitel.closure import record as records
    from tenants.deletion import DeletionRecord

    if public_key:
        click.echo(crypto.public_key_pem(settings().encryption_key), nl=False)
        return
    if verify_file is not None:
        try:
            text = verify_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"cannot read {verify_file}: {exc}", 2)
            return
        ok, why = records.verify_text(settings(), text)
        click.echo(why)
        sys.exit(0 if ok else 1)
    if not slug:
        fail("name a tenant (or give --verify FILE or --public-key)", 2)
        return
    from sqlalchemy import select

    from core.db import db

    tenant = _tenant(slug)
    record = db.session.execute(select(DeletionRecord).where(
        DeletionRecord.tenant_uid == tenant.uid)).scalar_one_or_none()
    if record is None:
        fail(f"tenant {slug!r} is {tenant.status.value}: it has no deletion record", 2)
        return
    if as_json:
        click.echo(json.dumps(records.signed_json(settings(), record), indent=2,
                              ensure_ascii=False))
    else:
        click.echo(records.signed_text(settings(), record), nl=False)
