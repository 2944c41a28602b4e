"""Helpers of the closure tests: a backup world with a mail server, what the tenant owns
before it leaves, and a scan of every place its data could remain."""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.backup_world import TITLE, BackupWorld
from tests.conftest import PG_URL

#: Platform-side evidence in the instance folder, kept on purpose (no client data): the
#: embedded platform database (registry row, catalogue, deletion record) and the access-log
#: witness files (hashes of entries and the purge line).
PLATFORM_EVIDENCE = ("platform.sqlite3", "audit-witness")


@dataclass
class Owned:
    """What the tenant had before it left, as the deletion record must name it."""

    uid: str
    slug: str
    database: str
    role: str | None
    grant_roles: list[str]
    files: int
    copies: set[tuple[str, str, str]]  # (key, target, sha256)


def owned(world: BackupWorld) -> Owned:
    from core.db import db
    from core.filestore import tenant_files_dir
    from maintenance.models import Grant
    from tenants.registry import Tenant

    with world.app.app_context():
        tenant = db.session.query(Tenant).filter_by(slug=world.slug).one()
        roles = [r for (r,) in db.session.query(Grant.role_name).filter(
            Grant.tenant_id == tenant.id, Grant.role_name.is_not(None))]
        folder = tenant_files_dir(world.settings, tenant.uid)
        files = sum(1 for p in folder.rglob("*") if p.is_file())
        copies = {(b["key"], target, b["sha256"]) for b in world.catalogue()
                  for target, (state, _) in b["copies"].items() if state == "ok"}
        return Owned(tenant.uid, tenant.slug, tenant.database_name, tenant.role_name, roles,
                     files, copies)


def record_json(world: BackupWorld) -> dict[str, Any]:
    result = world.run("tenants", "deletion-record", world.slug, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


#: The client's data the platform database must not keep after the purge (with the reason).
PRIVATE = (TITLE, "admin@acme.example", "Admin acme")


def _contents(path: Path) -> list[tuple[str, bytes]]:
    """A file's bytes, and for a ZIP (an export) each member's decompressed bytes too."""
    data = path.read_bytes()
    found = [("", data)]
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            found += [(f"!{name}", zf.read(name)) for name in zf.namelist()]
    return found


def platform_rows(world: BackupWorld, needles: tuple[str, ...]) -> list[str]:
    """Every text value of every platform table holding one of ``needles``."""
    from sqlalchemy import MetaData, String, Text

    from core.db import db

    found = []
    with world.app.app_context():
        meta = MetaData()
        meta.reflect(db.engine)
        with db.engine.connect() as conn:
            for table in meta.sorted_tables:
                columns = [c.name for c in table.columns if isinstance(c.type, String | Text)]
                for row in conn.execute(table.select()).mappings():
                    found += [f"platform {table.name}.{c} holds {n!r}" for c in columns
                              for n in needles if isinstance(row[c], str) and n in row[c]]
        db.session.remove()
    return found


def leftovers(world: BackupWorld, before: Owned, backend: str,
              reason: str | None = None) -> list[str]:
    """Every trace of the tenant still found: on the backup targets (any file or folder at
    all under its folder, or naming it), in the instance folder (names and bytes, inside
    ZIP files too: the exports), in the platform database's rows (the client's data: a
    record title, the admin's e-mail and name, the closure ``reason``), and on the database
    server (pg_database, pg_roles)."""
    needles = [before.uid, before.database, TITLE]
    if backend == "postgresql":
        needles += [before.role or "", *before.grant_roles]
    needles = [n for n in needles if n]
    found: list[str] = platform_rows(world, PRIVATE + ((reason,) if reason else ()))
    for key, _target, _sha in before.copies:
        for medium in world.media:
            if medium.joinpath(*key.split("/")).exists():
                found.append(f"archive {key} on {medium}")
    for medium in world.media:
        found += [f"on target: {p}" for p in medium.rglob("*")]
    instance = world.settings.instance_dir
    for path in instance.rglob("*"):
        relative = path.relative_to(instance)
        if relative.parts[0].startswith(PLATFORM_EVIDENCE):  # -wal, -shm too
            continue
        if any(n in str(relative) for n in needles):
            found.append(f"instance path {relative}")
        if path.is_file():
            for member, data in _contents(path):
                found += [f"{n!r} in {relative}{member}" for n in needles if n.encode() in data]
    if backend == "postgresql":
        from tenants import pg

        with pg.admin_connection(PG_URL) as conn, conn.cursor() as cur:
            cur.execute("SELECT datname FROM pg_database")
            found += [f"database {d}" for (d,) in cur.fetchall()
                      if d == before.database or before.uid in d]
            cur.execute("SELECT rolname FROM pg_roles")
            roles = {before.role, *before.grant_roles}
            found += [f"role {r}" for (r,) in cur.fetchall() if r in roles]
    return found


def status(world: BackupWorld) -> dict[str, Any]:
    from core.db import db
    from tenants.registry import Tenant

    with world.app.app_context():
        t = db.session.query(Tenant).filter_by(slug=world.slug).one()
        return {"status": t.status.value, "closed_at": t.closed_at, "dropped_at": t.dropped_at,
                "purged_at": t.purged_at, "purge_due_at": t.purge_due_at,
                "grace_ends_at": t.grace_ends_at, "reason": t.closure_reason}


def run_closures(world: BackupWorld):
    from qalitel.closure.job import run_closures as job

    return job(world.app)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path
