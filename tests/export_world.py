"""Helpers of the export tests: a tenant holding a bit of everything (records, an action,
a group, files, awkward text), a scan of every tenant table, and the tenant's stored files."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

from flask import Flask

from tests.conftest import in_tenant, provision
from tests.files_helpers import PDF, PNG

TITLE = "Fissure sur soudure Zébulon-4471 ✓"
FORMULA = "=SUM(A1:A9)*2"


def make_tenant(app: Flask, slug: str, password_hash: str, *, backend: str | None = None):
    """``provision`` plus an action, a group with a member, two attached files."""
    from qalitel.records.files.service import attach
    from qalitel.records.models import NonConformity
    from qalitel.records.service import create_action
    from qalitel.users.models import Group, User, UserGroup

    handle = provision(app, slug, password_hash, records=3)
    with in_tenant(app, slug) as session:
        user = session.get(User, handle.user_ids["user"])
        user.name = FORMULA
        record = session.get(NonConformity, handle.record_ids[0])
        record.title = TITLE
        record.description = "line one\nline two\u2028still two\r\n\ttabbed «é»"
        session.flush()
        action = create_action(user, "Grind and re-weld", record=record)
        group = Group(name="Qualité — atelier")
        session.add(group)
        session.flush()
        session.add(UserGroup(user_id=user.id, group_id=group.id))
        attach(user, record, io.BytesIO(PNG), "photo.png")
        attach(user, action, io.BytesIO(PDF), "rapport final.pdf")
        session.commit()
    return handle


def scan(app: Flask, slug: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of every tenant table but the identity row, ids included, as JSON values."""
    from sqlalchemy import select

    from qalitel.exports.tenant import tenant_tables
    from qalitel.exports.values import to_json

    found = {}
    with in_tenant(app, slug) as session:
        for table in tenant_tables():
            if table.name == "tenant_identity":
                continue
            rows = session.execute(select(table).order_by(*table.primary_key.columns))
            found[table.name] = [{k: to_json(v) for k, v in row.items()}
                                 for row in rows.mappings()]
    return found


def stored_files(app: Flask, uid: str) -> dict[str, str]:
    """The tenant's stored files: name → SHA-256 of the bytes."""
    from core.filestore import FileStore

    store = FileStore.for_tenant(app.extensions["qalitel_settings"], uid)
    return {sha: hashlib.sha256(store.path(sha).read_bytes()).hexdigest()
            for sha in store.blobs()}


def uid_of(app: Flask, slug: str) -> str:
    from core.db import db
    from tenants.registry import Tenant

    with app.app_context():
        return db.session.query(Tenant).filter_by(slug=slug).one().uid


def slugs(app: Flask) -> list[str]:
    from core.db import db
    from tenants.registry import Tenant

    with app.app_context():
        return sorted(t.slug for t in db.session.query(Tenant))


def run(app: Flask, *args: str | Path):
    return app.test_cli_runner().invoke(args=[str(a) for a in args])


REASON = "Ticket #812: the client asked for a copy"


def export(app: Flask, slug: str, *args: str | Path):
    """``qalitel tenants export SLUG --reason …`` (the reason is required)."""
    return run(app, "tenants", "export", slug, "--reason", REASON, *args)
