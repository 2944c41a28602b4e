"""``qalitel backup restore SLUG BACKUP_ID`` on both backends: a round trip brings back the
same records and files; a corrupt, truncated or wrong-key archive is refused and nothing
changes; bad input exits 2."""

from __future__ import annotations

import hashlib

import pytest

from tests.backup_world import (
    TITLE,
    BackupWorld,
    change_everything,
    files,
    keypair,
    leftovers,
    make_world,
    status,
)
from tests.conftest import PG_URL, in_tenant, provision


@pytest.fixture
def world(make_app, backend, tmp_path, password_hash) -> BackupWorld:
    return make_world(make_app, backend, tmp_path, password_hash)


def titles(world: BackupWorld) -> list[str]:
    from qalitel.records.models import NonConformity

    with in_tenant(world.app, world.slug) as session:
        return sorted(r.title for r in session.query(NonConformity))


def test_round_trip_restores_the_same_records_and_files(world, backend):
    before_titles, before_files = titles(world), files(world)
    assert TITLE in before_titles and len(before_files) == 2
    assert world.run("backup", "run", "acme").exit_code == 0
    change_everything(world)
    assert titles(world) != before_titles and files(world) != before_files

    result = world.run("backup", "restore", "acme", "1")
    assert result.exit_code == 0, result.output
    assert "acme: restored backup 1" in result.output
    assert titles(world) == before_titles
    assert files(world) == before_files
    assert status(world) == "active"
    assert leftovers(world, backend) == []
    # the restored tenant is backed up and verified like any other
    assert world.run("backup", "run", "acme").exit_code == 0
    assert world.run("backup", "verify", "acme", "--deep").exit_code == 0


def _corrupt_at_source(world: BackupWorld, cut: int) -> None:
    """Every copy truncated, and the catalogue agreeing (as if written corrupt)."""
    from backups.models import Backup
    from core.db import db

    for folder in world.media:
        [copy] = world.archives(folder)
        data = copy.read_bytes()[:cut]
        copy.write_bytes(data)
    with world.app.app_context():
        backup = db.session.get(Backup, 1)
        backup.sha256, backup.size = hashlib.sha256(data).hexdigest(), len(data)
        db.session.commit()


@pytest.mark.parametrize("damage", ["truncated", "wrong key", "altered copies"])
def test_a_bad_archive_is_refused_and_nothing_changes(world, backend, tmp_path, damage):
    assert world.run("backup", "run", "acme").exit_code == 0
    change_everything(world)
    after_titles, after_files = titles(world), files(world)
    if damage == "truncated":
        size = world.archives(world.media[0])[0].stat().st_size
        _corrupt_at_source(world, size // 2)
        expected = "cannot decrypt the archive"
    elif damage == "wrong key":
        world.configure(backup_identity=keypair(tmp_path, "other.txt")[1])
        expected = "cannot decrypt the archive"
    else:
        for folder in world.media:
            [copy] = world.archives(folder)
            copy.write_bytes(b"\0" * copy.stat().st_size)
        expected = "no good copy"
    result = world.run("backup", "restore", "acme", "1")
    assert result.exit_code == 1, result.output
    assert "nothing changed" in result.output and expected in result.output
    assert "Traceback" not in result.output
    assert titles(world) == after_titles and files(world) == after_files
    assert status(world) == "active"
    assert leftovers(world, backend) == []


def test_restore_bad_input(world, password_hash):
    provision(world.app, "bravo", password_hash)
    assert world.run("backup", "run", "bravo").exit_code == 0
    for args, message in [(("acme", "1"), "tenant 'acme' has no backup 1"),
                          (("acme", "99"), "has no backup 99"),
                          (("acme", "x1"), "is not a number"),
                          (("nosuch", "1"), "no tenant 'nosuch'")]:
        result = world.run("backup", "restore", *args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output
    world.configure(backup_identity=None)
    result = world.run("backup", "restore", "bravo", "1")
    assert result.exit_code == 2 and "QALITEL_BACKUP_IDENTITY is not set" in result.output


def _rewrite_archive(world: BackupWorld, **manifest_changes) -> None:
    """Replace backup 1 on every target by a re-encrypted archive whose manifest has
    ``manifest_changes`` (the catalogue updated to match, as if written so)."""
    import io
    import json
    import tarfile

    import pyrage

    from backups.models import Backup
    from core.db import db

    identity = pyrage.x25519.Identity.from_str(world.identity_file.read_text().split()[-1])
    [copy] = world.archives(world.media[0])
    plain = io.BytesIO(pyrage.decrypt(copy.read_bytes(), [identity]))
    out = io.BytesIO()
    with tarfile.open(fileobj=plain) as old, tarfile.open(fileobj=out, mode="w") as new:
        for member in old.getmembers():
            data = old.extractfile(member).read()
            if member.name == "manifest.json":
                data = json.dumps({**json.loads(data), **manifest_changes}).encode()
                member.size = len(data)
            new.addfile(member, io.BytesIO(data))
    sealed = pyrage.encrypt(out.getvalue(), [identity.to_public()])
    for folder in world.media:
        [copy] = world.archives(folder)
        copy.write_bytes(sealed)
    with world.app.app_context():
        backup = db.session.get(Backup, 1)
        backup.sha256, backup.size = hashlib.sha256(sealed).hexdigest(), len(sealed)
        db.session.commit()


def test_an_archive_of_a_newer_schema_is_refused(world, backend):
    assert world.run("backup", "run", "acme").exit_code == 0
    change_everything(world)
    after = titles(world)
    _rewrite_archive(world, schema_revision="t9999")
    result = world.run("backup", "restore", "acme", "1")
    assert result.exit_code == 1
    assert "schema revision 't9999' is newer than this code" in result.output
    assert titles(world) == after and status(world) == "active"
    assert leftovers(world, backend) == []


def test_an_archive_of_an_older_schema_is_restored_then_migrated(world, backend):
    from tenants import migrations
    from tenants.engines import TenantInfo
    from tenants.migrate import migration_engine
    from tenants.registry import Tenant

    head = migrations.head("tenant")
    with world.app.app_context():
        from core.db import db

        info = TenantInfo.from_row(db.session.query(Tenant).filter_by(slug="acme").one())
        engine = migration_engine(info, world.settings)
        with engine.begin() as conn:
            migrations.downgrade(conn, "tenant", "-1")
            older = migrations.current_revision(conn)
        engine.dispose()
    assert older != head
    assert world.run("backup", "run", "acme").exit_code == 0
    assert world.catalogue()[0]["status"] == "complete"
    with world.app.app_context():
        engine = migration_engine(info, world.settings)
        with engine.begin() as conn:
            migrations.upgrade(conn, "tenant")
        engine.dispose()
    result = world.run("backup", "restore", "acme", "1")
    assert result.exit_code == 0, result.output
    assert f"migrated {older} → {head}" in result.output
    assert TITLE in titles(world)
    with world.app.app_context():
        from core.db import db

        assert db.session.query(Tenant).filter_by(slug="acme").one().schema_revision == head
    assert leftovers(world, backend) == []


def _tenant_files(world: BackupWorld, slug: str) -> dict[str, str]:
    from core.db import db
    from tenants.registry import Tenant

    with world.app.app_context():
        uid = db.session.query(Tenant).filter_by(slug=slug).one().uid
    root = world.settings.instance_dir / "files" / uid
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in root.rglob("*") if p.is_file()}


def test_restore_as_a_new_tenant(world, backend):
    from tests.conftest import login

    before_titles, before_files = titles(world), files(world)
    assert world.run("backup", "run", "acme").exit_code == 0
    change_everything(world)
    after_titles = titles(world)
    result = world.run("backup", "restore", "acme", "1", "--as", "acme-copy")
    assert result.exit_code == 0, result.output
    assert "acme-copy: restored backup 1" in result.output
    copy = BackupWorld(world.app, "acme-copy", "", world.media, world.identity_file, world.tmp)
    assert titles(copy) == before_titles  # identity row rewritten: it opens as acme-copy
    assert _tenant_files(world, "acme-copy") == before_files
    assert titles(world) == after_titles  # the original is untouched
    assert status(copy) == "active"
    client = world.app.test_client()
    response = login(client, "acme-copy", "admin@acme.example")
    assert response.status_code == 302, response.status_code
    assert leftovers(world, backend) == []


def test_restore_as_leaves_nothing_when_it_fails(world, backend):
    from core.db import db
    from tenants.registry import Tenant

    assert world.run("backup", "run", "acme").exit_code == 0
    _corrupt_at_source(world, 400)
    result = world.run("backup", "restore", "acme", "1", "--as", "acme-copy")
    assert result.exit_code == 1 and "nothing changed" in result.output
    with world.app.app_context():
        assert db.session.query(Tenant).filter_by(slug="acme-copy").count() == 0
    if backend == "postgresql":
        from tenants import pg

        name = world.settings.pg_name_prefix + "acme-copy"
        with pg.admin_connection(PG_URL) as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (name,))
            assert cur.fetchone()[0] == 0
            cur.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", (name,))
            assert cur.fetchone()[0] == 0
    else:
        assert not (world.settings.sqlite_tenant_dir / "acme-copy.sqlite3").exists()
    for args, message in [(("--as", "acme"), "tenant 'acme' already exists"),
                          (("--as", "Bad"), "invalid slug")]:
        result = world.run("backup", "restore", "acme", "1", *args)
        assert result.exit_code == 2 and message in result.output
