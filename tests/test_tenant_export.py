"""``qalitel tenants export`` and ``import --as``: the archive holds every table, the people
as CSV and the files; importing it makes a new tenant with the same rows (ids included) and
files, on both backends and from SQLite to PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

import pytest

from tests.conftest import require_postgres
from tests.export_world import (
    FORMULA,
    TITLE,
    export,
    make_tenant,
    run,
    scan,
    slugs,
    stored_files,
    uid_of,
)


def test_export_then_import_as_gives_the_same_rows_and_files(make_app, backend, tmp_path,
                                                             password_hash):
    app = make_app(backend)
    handle = make_tenant(app, "acme", password_hash)
    archive = tmp_path / "acme.zip"
    result = export(app, "acme", "--output", archive, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["rows"]["nonconformities"] == 3 and summary["files"] == 2

    result = run(app, "tenants", "import", archive, "--as", "acme-copy")
    assert result.exit_code == 0, result.output
    assert "tenant acme-copy imported" in result.output
    before, after = scan(app, "acme"), scan(app, "acme-copy")
    assert before == after
    assert sum(len(rows) for rows in after.values()) > 10
    assert stored_files(app, handle.uid) == stored_files(app, uid_of(app, "acme-copy"))
    assert len(stored_files(app, handle.uid)) == 2


def test_ids_continue_after_the_imported_ones(make_app, backend, tmp_path, password_hash):
    from qalitel.users.models import User
    from tests.conftest import in_tenant

    app = make_app(backend)
    make_tenant(app, "acme", password_hash)
    archive = tmp_path / "acme.zip"
    assert export(app, "acme", "--output", archive).exit_code == 0
    assert run(app, "tenants", "import", archive, "--as", "acme-copy").exit_code == 0
    with in_tenant(app, "acme-copy") as session:
        top = max(u.id for u in session.query(User))
        user = User(email="new@acme.example", name="New", password_hash="x")
        session.add(user)
        session.commit()
        assert user.id == top + 1


def test_a_sqlite_export_imports_into_postgresql(make_app, tmp_path, password_hash):
    require_postgres()
    app = make_app("postgresql")
    from core.db import db
    from tenants.registry import Tenant

    handle = make_tenant(app, "acme", password_hash)
    with app.app_context():  # provision() used the default (PostgreSQL); make a SQLite twin
        assert db.session.query(Tenant).filter_by(slug="acme").one().backend.value == \
            "postgresql"
    archive = tmp_path / "acme.zip"
    assert export(app, "acme", "--output", archive).exit_code == 0
    result = run(app, "tenants", "import", archive, "--as", "acme-lite", "--backend", "sqlite")
    assert result.exit_code == 0, result.output
    lite = tmp_path / "lite.zip"
    assert export(app, "acme-lite", "--output", lite).exit_code == 0
    result = run(app, "tenants", "import", lite, "--as", "acme-pg", "--backend", "postgresql")
    assert result.exit_code == 0, result.output
    with app.app_context():
        backends = {t.slug: t.backend.value for t in db.session.query(Tenant)}
    assert backends == {"acme": "postgresql", "acme-lite": "sqlite", "acme-pg": "postgresql"}
    assert scan(app, "acme") == scan(app, "acme-lite") == scan(app, "acme-pg")
    assert stored_files(app, handle.uid) == stored_files(app, uid_of(app, "acme-pg"))


def test_the_archive_layout_and_manifest(make_app, backend, tmp_path, password_hash):
    from qalitel.exports.tenant import tenant_tables

    app = make_app(backend)
    handle = make_tenant(app, "acme", password_hash)
    archive = tmp_path / "acme.zip"
    assert export(app, "acme", "--output", archive).exit_code == 0
    with zipfile.ZipFile(archive) as zf:
        names = set(zf.namelist())
        manifest = json.loads(zf.read("manifest.json"))
        assert {f"tables/{t.name}.json" for t in tenant_tables()} <= names
        assert {"people/users.csv", "people/groups.csv", "people/memberships.csv"} <= names
        assert len([n for n in names if n.startswith("files/")]) == 2
        assert set(manifest["members"]) == names - {"manifest.json", "manifest.sig"}
        signature = json.loads(zf.read("manifest.sig"))
        with app.app_context():
            from core import crypto
            from core.config import settings
            from qalitel.exports.archive import canonical

            assert crypto.signature_ok(settings().encryption_key, canonical(manifest),
                                       signature["value"])
        assert manifest["tenant"] == {"slug": "acme", "name": "Acme", "uid": handle.uid}
        assert manifest["schema_revision"] and manifest["created_at"]
        assert manifest["tables"]["users"]["rows"] == 2
        records = json.loads(zf.read("tables/nonconformities.json"))
        assert records["table"] == "nonconformities"
        assert TITLE in {r["title"] for r in records["rows"]}
        assert all(r["created_at"].endswith("+00:00") for r in records["rows"])
        people = zf.read("people/users.csv")
        assert people.startswith("\ufeff".encode())
        sheet = list(csv.DictReader(io.StringIO(people.decode("utf-8-sig"))))
        assert {r["email"] for r in sheet} == {handle.admin_email, handle.user_email}
        assert "'" + FORMULA in {r["name"] for r in sheet}  # not run as a formula by Excel
        assert "password_hash" not in sheet[0] and "session_token" not in sheet[0]
        members = list(csv.DictReader(io.StringIO(
            zf.read("people/memberships.csv").decode("utf-8-sig"))))
        assert members == [{"user_id": str(handle.user_ids["user"]),
                            "user_email": handle.user_email, "group_id": "1",
                            "group_name": "Qualité — atelier"}]
    assert slugs(app) == ["acme"]


@pytest.mark.parametrize("problem", ["unknown", "bad slug", "missing folder", "exists",
                                     "is folder"])
def test_export_bad_input_exits_2(make_app, tmp_path, password_hash, problem):
    app = make_app("sqlite")
    make_tenant(app, "acme", password_hash)
    existing = tmp_path / "taken.zip"
    existing.write_bytes(b"keep me")
    slug, output, message = {
        "unknown": ("nobody", tmp_path / "a.zip", "no tenant 'nobody'"),
        "bad slug": ("Bad/Slug", tmp_path / "a.zip", "slug"),
        "missing folder": ("acme", tmp_path / "nowhere" / "a.zip", "does not exist"),
        "exists": ("acme", existing, "already exists (pass --force"),
        "is folder": ("acme", tmp_path, "is a directory"),
    }[problem]
    result = export(app, slug, "--output", output)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert existing.read_bytes() == b"keep me"
    assert not list(tmp_path.glob("*.partial")) and not list(tmp_path.glob(".*.partial"))


def test_force_replaces_an_existing_output(make_app, tmp_path, password_hash):
    app = make_app("sqlite")
    make_tenant(app, "acme", password_hash)
    existing = tmp_path / "taken.zip"
    existing.write_bytes(b"old")
    result = export(app, "acme", "--output", existing, "--force")
    assert result.exit_code == 0, result.output
    assert zipfile.is_zipfile(existing)


def test_the_archive_is_one_snapshot(make_app, backend, tmp_path, password_hash, monkeypatch):
    """A user added while the export runs is in none of its members (tables and CSV agree)."""
    from sqlalchemy import insert

    from core.db import db
    from qalitel.exports import tenant as exporting
    from qalitel.users.models import User
    from tenants.engines import TenantInfo, build_engine
    from tenants.registry import Tenant

    app = make_app(backend)
    make_tenant(app, "acme", password_hash)
    with app.app_context():
        info = TenantInfo.from_row(db.session.query(Tenant).filter_by(slug="acme").one())
    real = exporting._write_people

    def meanwhile(writer, conn) -> None:
        engine = build_engine(info, app.extensions["qalitel_settings"], pooled=False)
        with engine.begin() as other:
            other.execute(insert(User.__table__).values(
                email="late@acme.example", name="Late", password_hash="x", profile="user",
                session_token="t" * 20))
        engine.dispose()
        real(writer, conn)

    monkeypatch.setattr(exporting, "_write_people", meanwhile)
    archive = tmp_path / "acme.zip"
    result = export(app, "acme", "--output", archive)
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(archive) as zf:
        emails = {r["email"] for r in json.loads(zf.read("tables/users.json"))["rows"]}
        sheet = {r["email"] for r in csv.DictReader(io.StringIO(
            zf.read("people/users.csv").decode("utf-8-sig")))}
    assert emails == sheet and "late@acme.example" not in sheet and len(sheet) == 2


def test_without_output_the_archive_goes_to_the_private_exports_folder(make_app, tmp_path,
                                                                       password_hash):
    app = make_app("sqlite")
    make_tenant(app, "acme", password_hash)
    result = export(app, "acme", "--json")
    assert result.exit_code == 0, result.output
    written = Path(json.loads(result.output)["output"])
    assert written.parent == app.extensions["qalitel_settings"].instance_dir / "exports"
    assert written.name.startswith("acme-export-") and zipfile.is_zipfile(written)
    assert written.stat().st_mode & 0o077 == 0
