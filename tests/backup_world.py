"""Helpers of the backup tests: an age keypair, two folder targets, an app wired to them,
a tenant with records and files, what the targets and catalogue hold, and what a
restore may leave behind."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyrage
from flask import Flask

from core.filestore import FileStore
from tests.conftest import PG_URL, in_tenant, provision

TITLE = "Fissure on weld seam Zebulon-4471"
REPORT = f"report about {TITLE}\n".encode()


@dataclass
class BackupWorld:
    app: Flask
    slug: str
    uid: str
    media: list[Path]
    identity_file: Path
    tmp: Path

    @property
    def settings(self) -> Any:
        return self.app.extensions["qalitel_settings"]

    def configure(self, **changes: Any) -> None:
        """Replace some settings of the running app (as a restart with new variables would)."""
        import dataclasses

        from core import config

        self.app.extensions[config.EXTENSION] = dataclasses.replace(self.settings, **changes)

    def run(self, *args: str):
        return self.app.test_cli_runner().invoke(args=list(args))

    def json(self, *args: str) -> dict:
        result = self.run(*args, "--json")
        return json.loads(result.stdout)

    def archives(self, folder: Path) -> list[Path]:
        return sorted(p for p in folder.rglob("*") if p.is_file())

    def leftovers(self) -> list[Path]:
        """Temporary files on any target, or plaintext left in the staging folder."""
        found = [p for m in self.media if m.is_dir() for p in m.rglob("*.partial")]
        staging = self.settings.instance_dir / "backup-staging"
        if staging.exists():
            found += [p for p in staging.iterdir() if p.name != ".lock"]
        return found

    def catalogue(self) -> list[dict]:
        from backups.models import Backup
        from core.db import db

        with self.app.app_context():
            rows = db.session.query(Backup).order_by(Backup.id).all()
            return [{"id": b.id, "status": b.status.value, "sha256": b.sha256, "key": b.key,
                     "error": b.error, "size": b.size,
                     "copies": {c.target: (c.status.value, c.error) for c in b.copies}}
                    for b in rows]


def keypair(tmp: Path, name: str = "identity.txt") -> tuple[str, Path]:
    identity = pyrage.x25519.Identity.generate()
    path = tmp / name
    path.write_text(f"# test key\n{identity}\n")
    return str(identity.to_public()), path


def make_world(make_app, backend: str, tmp: Path, password_hash: str, *,
               media: list[Path] | None = None, **overrides: Any) -> BackupWorld:
    public, identity_file = keypair(tmp)
    if media is None:
        media = [tmp / "media-a", tmp / "media-b"]
        for folder in media:
            folder.mkdir()
    values = {"backup_targets": tuple(str(m) for m in media), "backup_recipient": public,
              "backup_identity": identity_file}
    values.update(overrides)
    app = make_app(backend, **values)
    handle = provision(app, "acme", password_hash, records=2)
    from qalitel.records.models import NonConformity
    from tests.conftest import in_tenant

    with in_tenant(app, "acme") as session:
        record = session.get(NonConformity, handle.record_ids[0])
        record.title = TITLE
        session.commit()
    store = FileStore.for_tenant(app.extensions["qalitel_settings"], handle.uid)
    store_bytes(store, os.urandom(40_000) + TITLE.encode())
    store_bytes(store, REPORT)
    return BackupWorld(app, "acme", handle.uid, media, identity_file, tmp)


def store_bytes(store: FileStore, data: bytes) -> str:
    """Put ``data`` in the file store as an upload does; its blob name (``<2 hex>/<sha>``)."""
    staged = store.stage(io.BytesIO(data), len(data))
    store.commit(staged)
    return f"{staged.sha256[:2]}/{staged.sha256}"


def report_blob() -> str:
    sha = hashlib.sha256(REPORT).hexdigest()
    return f"{sha[:2]}/{sha}"


def mount_tmpfs(folder: Path, options: str) -> bool:
    """Mount a real tmpfs (``size=…`` for a full disk, ``ro`` for a read-only one)."""
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                          capture_output=True, check=False)
    return done.returncode == 0


def unmount(folder: Path) -> None:
    subprocess.run(["umount", str(folder)], capture_output=True, check=False)


def files(world: BackupWorld) -> dict[str, str]:
    """The tenant's committed files (what an archive holds), by name, with their hashes."""
    root = world.settings.instance_dir / "files" / world.uid
    return {f"{sha[:2]}/{sha}": hashlib.sha256((root / sha[:2] / sha).read_bytes()).hexdigest()
            for sha in FileStore(root).blobs()}


def change_everything(world: BackupWorld) -> None:
    from qalitel.records.models import NonConformity

    with in_tenant(world.app, world.slug) as session:
        records = session.query(NonConformity).order_by(NonConformity.id).all()
        records[0].title = "changed after the backup"
        session.delete(records[1])
        session.commit()
    store = FileStore.for_tenant(world.settings, world.uid)
    store.remove(report_blob().split("/")[1])
    store_bytes(store, b"added after the backup")


def status(world: BackupWorld) -> str:
    from core.db import db
    from tenants.registry import Tenant

    with world.app.app_context():
        return db.session.query(Tenant).filter_by(slug=world.slug).one().status.value


def leftovers(world: BackupWorld, backend: str) -> list[str]:
    """Scratch and previous databases, files and folders a restore may leave."""
    instance = world.settings.instance_dir
    found = [p.name for p in (instance / "tenants").iterdir() if "restor" in p.name]
    found += [p.name for p in (instance / "files").iterdir() if "restor" in p.name]
    if backend == "postgresql":
        from tenants import pg

        prefix = world.settings.pg_name_prefix
        with pg.admin_connection(PG_URL) as conn, conn.cursor() as cur:
            cur.execute("SELECT datname FROM pg_database WHERE starts_with(datname, %s)",
                        (prefix + "bk_",))
            found += [row[0] for row in cur.fetchall()]
    journals = instance / "backup-journal"
    if journals.exists():
        found += [p.name for p in journals.iterdir()]
    return found + [p.name for p in world.leftovers()]
