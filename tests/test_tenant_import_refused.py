"""``qalitel tenants import`` refuses a tampered or hostile archive with a clear message and
exit 2, and leaves nothing behind: no registry row, no database, no files."""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import PG_URL
from tests.export_world import export, make_tenant, run, slugs


@pytest.fixture
def exported(make_app, backend, tmp_path, password_hash):
    app = make_app(backend)
    make_tenant(app, "acme", password_hash)
    archive = tmp_path / "acme.zip"
    assert export(app, "acme", "--output", archive).exit_code == 0
    return app, archive


def rewrite(source: Path, target: Path, *, drop: tuple[str, ...] = (),
            add: dict[str, bytes] | None = None,
            change: dict[str, Callable[[bytes], bytes]] | None = None,
            manifest: Callable[[dict], None] | None = None, rehash: bool = False) -> Path:
    """A copy of ``source`` with members dropped, added or changed; ``rehash`` makes the
    manifest agree with the changed bytes (a forger who knows the format)."""
    with zipfile.ZipFile(source) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    document = json.loads(members.pop("manifest.json"))
    for name in drop:
        members.pop(name)
    for name, edit in (change or {}).items():
        members[name] = edit(members[name])
        if rehash:
            document["members"][name] = {"sha256": hashlib.sha256(members[name]).hexdigest(),
                                         "size": len(members[name])}
    members.update(add or {})
    if manifest:
        manifest(document)
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("manifest.json", json.dumps(document))
        for name, data in members.items():
            zf.writestr(name, data)
    return target


def nothing_left(app, backend: str, slug: str = "copy") -> None:
    settings = app.extensions["qalitel_settings"]
    assert slugs(app) == ["acme"]
    assert len([p for p in (settings.instance_dir / "files").iterdir() if p.is_dir()]) == 1
    assert not (settings.sqlite_tenant_dir / f"{slug}.sqlite3").exists()
    if backend == "postgresql":
        from tenants import pg

        with pg.admin_connection(PG_URL) as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_database WHERE datname = %s",
                        (settings.pg_name_prefix + slug,))
            assert cur.fetchone()[0] == 0


def first_file(archive: Path) -> str:
    with zipfile.ZipFile(archive) as zf:
        return next(n for n in zf.namelist() if n.startswith("files/"))


def flip_last_byte(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 1])


def add_column(data: bytes) -> bytes:
    return data.replace(b'"email": ', b'"evil": 1, "email": ', 1)


def _bomb(doc: dict, name: str, data: bytes) -> None:
    doc["members"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


ZEROS = bytes(50 << 20)
ZEROS_NAME = "files/" + hashlib.sha256(ZEROS).hexdigest()

CASES = {
    "altered file": (lambda a: {"change": {first_file(a): flip_last_byte}},
                     "differs from its manifest"),
    "altered table": (lambda a: {"change": {"tables/users.json": lambda d: d.replace(
        b"Admin acme", b"Admin evil")}}, "differs from its manifest"),
    "missing member": (lambda a: {"drop": ("people/users.csv",)},
                       "missing from the archive: people/users.csv"),
    "extra member": (lambda a: {"add": {"files/" + "0" * 64: b"sneaked in"}},
                     "the manifest does not list"),
    "unexpected member": (lambda a: {"add": {"notes.txt": b"hello"}},
                          "unexpected member 'notes.txt'"),
    "path traversal": (lambda a: {"add": {"files/../../../evil": b"x"}}, "unsafe member name"),
    "absolute path": (lambda a: {"add": {"/etc/cron.d/evil": b"x"}}, "unsafe member name"),
    "newer revision": (lambda a: {"manifest": lambda d: d.update(schema_revision="t9999")},
                       "newer than this code"),
    "unknown table": (lambda a: {"manifest": lambda d: d["tables"].update(
        secrets={"member": "tables/secrets.json", "rows": 0})}, "unknown table(s)"),
    "lying size": (lambda a: {"manifest": lambda d: d["members"]["people/users.csv"].update(
        size=3)}, "its manifest says 3"),
    "zip bomb": (lambda a: {"add": {ZEROS_NAME: ZEROS},
                            "manifest": lambda d: _bomb(d, ZEROS_NAME, ZEROS)}, "zip bomb"),
    # consistent forgeries, caught while loading: the new tenant is provisioned, then destroyed
    "unknown column": (lambda a: {"change": {"tables/users.json": add_column}, "rehash": True},
                       "unknown column(s) evil"),
    "row count": (lambda a: {"manifest": lambda d: d["tables"]["users"].update(rows=5)},
                  "holds 2 rows, its manifest says 5"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_tampered_archive_is_refused_and_nothing_is_left(exported, backend, tmp_path, case):
    app, archive = exported
    changes, message = CASES[case]
    forged = rewrite(archive, tmp_path / "forged.zip", **changes(archive))
    # --unsigned: the checks behind the signature hold for an archive imported without it
    result = run(app, "tenants", "import", forged, "--as", "copy", "--unsigned")
    assert result.exit_code == 2, result.output
    assert message in result.output, result.output
    assert "Traceback" not in result.output
    nothing_left(app, backend)


def test_the_untouched_archive_imports(exported, backend, tmp_path):
    app, archive = exported
    copy = rewrite(archive, tmp_path / "same.zip")
    assert run(app, "tenants", "import", copy, "--as", "copy").exit_code == 0


@pytest.mark.parametrize(("content", "message"), [
    (b"this is not a zip at all", "is not a ZIP archive"),
    (None, "no such file"),
])
def test_not_an_archive(exported, backend, tmp_path, content, message):
    app, _archive = exported
    path = tmp_path / "input.zip"
    if content is not None:
        path.write_bytes(content)
    result = run(app, "tenants", "import", path, "--as", "copy")
    assert result.exit_code == 2 and message in result.output, result.output
    nothing_left(app, backend)


def test_a_zip_without_manifest(exported, backend, tmp_path):
    app, _archive = exported
    path = tmp_path / "other.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("tables/users.json", "{}")
    result = run(app, "tenants", "import", path, "--as", "copy")
    assert result.exit_code == 2 and "no manifest.json" in result.output, result.output


def test_an_encrypted_member_is_refused(exported, backend, tmp_path):
    app, archive = exported
    data = bytearray(archive.read_bytes())
    name = first_file(archive).encode()
    entry = next(i for i in range(len(data)) if data.startswith(b"PK\x01\x02", i)
                 and data[i + 46:i + 46 + len(name)] == name)
    data[entry + 8] |= 0x1  # the central directory says: encrypted
    path = tmp_path / "locked.zip"
    path.write_bytes(bytes(data))
    result = run(app, "tenants", "import", path, "--as", "copy")
    assert result.exit_code == 2 and "is encrypted" in result.output, result.output
    nothing_left(app, backend)


def test_the_total_size_is_capped(exported, backend):
    from qalitel.exports.archive import ExportArchiveError, Limits
    from qalitel.exports.tenant_import import import_tenant

    app, archive = exported
    with app.app_context(), pytest.raises(ExportArchiveError, match="more than the 1000"):
        import_tenant(app.extensions["qalitel_settings"], archive, "copy",
                      limits=Limits(total_bytes=1000))
    nothing_left(app, backend)


@pytest.mark.parametrize(("slug", "message"), [("acme", "already exists"),
                                               ("Bad/Slug", "slug")])
def test_a_taken_or_invalid_slug(exported, backend, slug, message):
    app, archive = exported
    result = run(app, "tenants", "import", archive, "--as", slug)
    assert result.exit_code == 2 and message in result.output, result.output
    assert slugs(app) == ["acme"]


def make_admin(data: bytes) -> bytes:
    assert b'"profile": "user"' in data
    return data.replace(b'"profile": "user"', b'"profile": "admin"')


def profiles(app, slug: str) -> list[str]:
    from qalitel.users.models import User
    from tests.conftest import in_tenant

    with in_tenant(app, slug) as session:
        return sorted(u.profile.value for u in session.query(User))


def resign(source: Path, target: Path, key: str) -> Path:
    """``source`` with its manifest signed again under another platform's key."""
    from core import crypto
    from qalitel.exports.archive import canonical

    with zipfile.ZipFile(source) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    signature = json.loads(members["manifest.sig"])
    signature["value"] = crypto.sign(key, canonical(json.loads(members["manifest.json"])))
    members["manifest.sig"] = json.dumps(signature).encode()
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return target


def test_a_consistent_forgery_is_refused_by_the_signature(exported, backend, tmp_path):
    """A user made admin, users.json re-hashed in the manifest: every hash agrees, the
    platform's signature of the manifest does not."""
    app, archive = exported
    forged = rewrite(archive, tmp_path / "forged.zip",
                     change={"tables/users.json": make_admin}, rehash=True)
    result = run(app, "tenants", "import", forged, "--as", "copy")
    assert result.exit_code == 2, result.output
    assert "signature does not match its manifest" in result.output
    assert "--unsigned" in result.output and "Traceback" not in result.output
    nothing_left(app, backend)


@pytest.mark.parametrize("how", ["no signature", "another platform's key"])
def test_an_unsigned_archive_is_refused(exported, backend, tmp_path, how):
    from cryptography.fernet import Fernet

    app, archive = exported
    if how == "no signature":
        forged = rewrite(archive, tmp_path / "forged.zip", drop=("manifest.sig",))
        message = "is not signed"
    else:
        forged = resign(archive, tmp_path / "forged.zip", Fernet.generate_key().decode())
        message = "exported by another platform"
    result = run(app, "tenants", "import", forged, "--as", "copy")
    assert result.exit_code == 2 and message in result.output, result.output
    nothing_left(app, backend)


def test_unsigned_imports_only_when_asked_and_says_so(exported, backend, tmp_path):
    app, archive = exported
    forged = rewrite(archive, tmp_path / "forged.zip",
                     change={"tables/users.json": make_admin}, rehash=True)
    result = run(app, "tenants", "import", forged, "--as", "copy", "--unsigned", "--json")
    assert result.exit_code == 0, result.output
    assert "WARNING: UNSIGNED IMPORT" in result.stderr
    done = json.loads(result.stdout)
    assert done["signed"] is False and "does not match" in done["signature_problem"]
    assert profiles(app, "copy") == ["admin", "admin"]  # what the operator accepted
    signed = run(app, "tenants", "import", archive, "--as", "copy2")
    assert signed.exit_code == 0 and "WARNING" not in signed.output, signed.output
    assert profiles(app, "copy2") == ["admin", "user"]


def _duplicate_second_row(data: bytes) -> bytes:
    lines = data.split(b"\n")  # header, row 1, row 2, ..., "]}"
    lines[2] = lines[1].rstrip(b",") + (b"," if lines[2].endswith(b",") else b"")
    return b"\n".join(lines)


def test_a_duplicate_row_is_a_clear_refusal_without_the_values(exported, backend, tmp_path):
    """The database refuses the row (same id): the message names the member, not the row's
    password hash or token; the half-made tenant goes."""
    from sqlalchemy import text

    from tests.conftest import in_tenant

    app, archive = exported
    with in_tenant(app, "acme") as session:
        secrets = [v for row in session.execute(
            text("SELECT password_hash, session_token FROM users")) for v in row]
    assert len(secrets) == 4
    forged = rewrite(archive, tmp_path / "forged.zip",
                     change={"tables/users.json": _duplicate_second_row}, rehash=True)
    result = run(app, "tenants", "import", forged, "--as", "copy", "--unsigned")
    assert result.exit_code == 2, result.output
    assert "tables/users.json: the database refused its rows" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert not [s for s in secrets if s in result.output]
    nothing_left(app, backend)
