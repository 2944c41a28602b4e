"""``qalitel backup run|list|verify`` on both backends: encrypted archives on every folder
target, catalogued, verified by checksum and by restoring into a scratch copy."""

from __future__ import annotations

import hashlib
import json

import pyrage
import pytest

from tests.backup_world import (
    TITLE,
    BackupWorld,
    files,
    keypair,
    make_world,
    report_blob,
    store_bytes,
)
from tests.conftest import provision


@pytest.fixture
def world(make_app, backend, tmp_path, password_hash) -> BackupWorld:
    return make_world(make_app, backend, tmp_path, password_hash)


def test_run_writes_one_encrypted_archive_to_every_target(world, backend):
    result = world.run("backup", "run", "acme")
    assert result.exit_code == 0, result.output
    assert "acme: backup 1 complete" in result.output
    [backup] = world.catalogue()
    assert backup["status"] == "complete"
    assert set(backup["copies"]) == {str(m) for m in world.media}
    assert all(state == ("ok", None) for state in backup["copies"].values())
    for folder in world.media:
        [copy] = world.archives(folder)
        data = copy.read_bytes()
        assert copy.relative_to(folder).as_posix() == backup["key"]
        assert hashlib.sha256(data).hexdigest() == backup["sha256"]
        assert len(data) == backup["size"]
        assert data.startswith(b"age-encryption.org/v1")
        for secret in (TITLE.encode(), TITLE.encode("utf-16-le"), b"secret of acme",
                       b"admin@acme.example", b"report about"):
            assert secret not in data
    assert world.leftovers() == []


def _archive_content(world: BackupWorld) -> tuple[list[str], dict]:
    """The member names of the archive on the first medium, and its manifest."""
    import io
    import tarfile

    [copy] = world.archives(world.media[0])
    identity = pyrage.x25519.Identity.from_str(world.identity_file.read_text().split()[-1])
    with tarfile.open(fileobj=io.BytesIO(pyrage.decrypt(copy.read_bytes(), [identity]))) as tar:
        return sorted(tar.getnames()), json.load(tar.extractfile("manifest.json"))


def test_archive_holds_manifest_database_and_files(world, backend, tmp_path):
    assert world.run("backup", "run", "acme").exit_code == 0
    names, manifest = _archive_content(world)
    member = "database.sqlite3" if backend == "sqlite" else "database.pgdump"
    blobs = sorted(files(world))
    assert len(blobs) == 2 and report_blob() in blobs
    assert names == sorted(["manifest.json", member, *(f"files/{b}" for b in blobs)])
    assert manifest["tenant"]["slug"] == "acme" and manifest["tenant"]["uid"] == world.uid
    assert manifest["backend"] == backend
    assert manifest["database"]["tables"]["nonconformities"] == 2
    assert manifest["database"]["tables"]["tenant_identity"] == 1
    assert manifest["schema_revision"]
    assert [f["path"] for f in manifest["files"]] == blobs
    assert all(f["sha256"] == f["path"].split("/")[1] for f in manifest["files"])


def test_a_backup_during_uploads_holds_only_committed_files_and_restores(world, monkeypatch):
    """An upload streams into the store's tmp/ while a backup runs, another starts and the
    first ends between the listing of the files and their tarring, and a file is removed
    (the files sweep) meanwhile: the archive holds the committed files only, each hashed as
    it was tarred; it is complete, verifies deep and restores."""
    import io

    from backups import archive
    from core.filestore import FileStore

    store = FileStore.for_tenant(world.settings, world.uid)
    streaming = store.stage(io.BytesIO(b"the first half of an upload"), 1000)
    gone = store_bytes(store, b"unreferenced: the files sweep removes it meanwhile")
    kept = {name: sha for name, sha in files(world).items() if name != gone}
    real = archive._tenant_files

    def listed_then_uploads_move(settings, uid):
        found = real(settings, uid)
        with open(streaming.path, "ab") as more:  # the upload goes on...
            more.write(b" and its second half")
        streaming.path.unlink()  # ...and is committed or abandoned
        store.stage(io.BytesIO(b"another upload starts"), 1000)
        assert store.remove(gone.split("/")[1])
        return found

    monkeypatch.setattr(archive, "_tenant_files", listed_then_uploads_move)
    made = world.run("backup", "run", "acme")
    monkeypatch.setattr(archive, "_tenant_files", real)
    assert made.exit_code == 0, made.output
    assert [b["status"] for b in world.catalogue()] == ["complete"]
    names, manifest = _archive_content(world)
    assert [n for n in names if n.startswith("files/")] == [f"files/{n}" for n in sorted(kept)]
    assert {f["path"]: f["sha256"] for f in manifest["files"]} == kept
    assert (world.settings.instance_dir / "files" / world.uid / ".lock").exists()  # not archived
    deep = world.run("backup", "verify", "acme", "--deep")
    assert deep.exit_code == 0, deep.output
    restored = world.run("backup", "restore", "acme", "1")
    assert restored.exit_code == 0, restored.output
    assert files(world) == kept


def test_list_shows_the_catalogue(world):
    assert world.run("backup", "run", "acme").exit_code == 0
    assert world.run("backup", "run", "acme").exit_code == 0
    listed = world.json("backup", "list", "acme")
    assert [b["id"] for b in listed["backups"]] == [2, 1]
    first = listed["backups"][0]
    assert first["status"] == "complete" and len(first["sha256"]) == 64
    assert [c["status"] for c in first["copies"]] == ["ok", "ok"]
    plain = world.run("backup", "list", "acme")
    assert plain.exit_code == 0 and "complete" in plain.output and "2 copies" in plain.output


def test_verify_checks_every_copy_and_deep_restores(world, backend):
    assert world.run("backup", "run", "acme").exit_code == 0
    result = world.run("backup", "verify", "acme", "--deep")
    assert result.exit_code == 0, result.output
    assert result.output.count(": ok") == 2
    assert "restored and matches its manifest" in result.output
    report = world.json("backup", "verify", "--deep")
    assert [c["result"] for c in report["copies"]] == ["ok", "ok"]
    [deep] = report["deep"]
    assert deep["ok"] and deep["files"] == 2 and deep["tables"] > 5
    assert world.leftovers() == []
    if backend == "postgresql":
        from tenants import pg
        from tests.conftest import PG_URL

        with pg.admin_connection(PG_URL) as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_database WHERE datname LIKE %s",
                        (world.settings.pg_name_prefix + "verify_%",))
            assert cur.fetchone()[0] == 0  # the scratch database is gone


def test_verify_names_short_altered_and_missing_copies(world):
    assert world.run("backup", "run", "acme").exit_code == 0
    [a] = world.archives(world.media[0])
    [b] = world.archives(world.media[1])
    a.write_bytes(a.read_bytes()[:-10])
    data = bytearray(b.read_bytes())
    data[200] ^= 0xFF
    b.write_bytes(bytes(data))
    result = world.run("backup", "verify", "acme")
    assert result.exit_code == 1
    assert f"backup 1 on {world.media[0]}: short" in result.output
    assert f"backup 1 on {world.media[1]}: altered" in result.output
    b.unlink()
    result = world.run("backup", "verify")
    assert result.exit_code == 1 and f"backup 1 on {world.media[1]}: missing" in result.output
    deep = world.run("backup", "verify", "acme", "--deep")
    assert deep.exit_code == 1 and "deep: no good copy" in deep.output


def test_deep_verify_with_the_wrong_identity_fails_clearly(world, make_app, tmp_path):
    assert world.run("backup", "run", "acme").exit_code == 0
    _public, other = keypair(tmp_path, "other.txt")
    world.configure(backup_identity=other)
    result = world.run("backup", "verify", "acme", "--deep")
    assert result.exit_code == 1
    assert "cannot decrypt the archive" in result.output
    assert "Traceback" not in result.output
    assert world.leftovers() == []


def test_all_backs_up_every_live_tenant_in_parallel_as_json(world, password_hash):
    provision(world.app, "bravo", password_hash, records=1)
    provision(world.app, "carol", password_hash, records=1)
    assert world.run("tenants", "suspend", "carol").exit_code == 0
    assert world.settings.migrate_connection_budget // 2 == 2  # two tenants at a time
    result = world.run("backup", "run", "--all", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [b["tenant"] for b in report["backups"]] == ["acme", "bravo", "carol"]
    assert all(b["status"] == "complete" and len(b["copies"]) == 2
               for b in report["backups"])
    assert len({b["sha256"] for b in report["backups"]}) == 3
    assert all(len(world.archives(m)) == 3 for m in world.media)
    assert world.run("backup", "verify", "--deep").exit_code == 0


def test_parallel_work_stays_within_the_connection_budget(world, password_hash, monkeypatch):
    """Each tenant in progress holds one connection to its database (pg_dump's): at most
    budget / 2 tenants are worked on at once (the rest is headroom), and at least one."""
    import threading

    from backups import archive
    from backups.run import workers_for

    assert [workers_for(world.settings, n) for n in (1, 3, 10)] == [1, 2, 2]
    import dataclasses

    assert workers_for(dataclasses.replace(world.settings, migrate_connection_budget=1), 5) == 1
    for slug in ("bravo", "carol", "delta"):
        provision(world.app, slug, password_hash, records=1)
    lock, running, peak = threading.Lock(), [0], [0]
    real_build = archive.build

    def counting_build(*args, **kwargs):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        try:
            return real_build(*args, **kwargs)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(archive, "build", counting_build)
    result = world.run("backup", "run", "--all")
    assert result.exit_code == 0, result.output
    assert 1 <= peak[0] <= 2
