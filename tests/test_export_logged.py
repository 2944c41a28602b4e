"""``qalitel tenants export`` is visible to the client: each export leaves an ``export`` entry
in the tenant's tamper-evident access log (OS user, host, the file's SHA-256, the reason),
written before the file is put in place, shown in plain words (EN/FR) on the admin's
access-log page; without a reason, or when the log cannot be written, no export is."""

from __future__ import annotations

import getpass
import hashlib
import socket

import pytest
from sqlalchemy import select, text

from tests.conftest import login
from tests.export_world import REASON, export, make_tenant, run


def _entries(app, slug: str) -> list:
    from core.db import db
    from maintenance import audit
    from tenants.registry import Tenant

    with app.app_context():
        tenant_id = db.session.execute(select(Tenant.id).where(Tenant.slug == slug)).scalar()
        assert audit.verify(tenant_id).ok
        return audit.entries_page(tenant_id, offset=0, limit=100)


def test_an_export_is_logged_with_who_where_hash_and_reason(make_app, backend, tmp_path,
                                                           password_hash):
    app = make_app(backend)
    handle = make_tenant(app, "acme", password_hash)
    out = tmp_path / "out"
    out.mkdir()
    archive = out / "acme.zip"
    result = export(app, "acme", "--output", archive)
    assert result.exit_code == 0, result.output
    [entry] = _entries(app, "acme")
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    assert entry.event == "export" and entry.actor_kind == "staff"
    assert entry.detail == {"purpose": "operator", "os_user": getpass.getuser(),
                            "host": socket.gethostname(), "file": "acme.zip",
                            "sha256": digest, "size": archive.stat().st_size,
                            "reason": REASON}
    assert sorted(p.name for p in out.iterdir()) == ["acme.zip"]  # no hidden leftovers

    client = app.test_client()
    assert login(client, "acme", handle.admin_email).status_code == 302
    english = client.get("/t/acme/maintenance/log", headers={"Accept-Language": "en"})
    html = english.get_data(as_text=True)
    assert english.status_code == 200 and 'data-status="valid"' in html
    assert "Full export of your data by SCOQI" in html
    assert (f"{getpass.getuser()}, on the computer {socket.gethostname()}, exported all of "
            "your company's data") in html.replace("&#39;", "'")
    assert REASON in html and digest in html
    french = client.get("/t/acme/maintenance/log", headers={"Accept-Language": "fr"})
    html = french.get_data(as_text=True)
    assert "Export complet de vos données par SCOQI" in html
    assert "a exporté toutes les données de votre entreprise" in html
    assert "Motif indiqué" in html and digest in html


@pytest.mark.parametrize("reason", [None, "", "   ", "two\nlines", "x" * 501])
def test_an_export_needs_a_reason(make_app, tmp_path, password_hash, reason):
    app = make_app("sqlite")
    make_tenant(app, "acme", password_hash)
    out = tmp_path / "out"
    out.mkdir()
    archive = out / "acme.zip"
    args = ["tenants", "export", "acme", "--output", archive]
    result = run(app, *args, *(["--reason", reason] if reason is not None else []))
    assert result.exit_code == 2, result.output
    assert "reason" in result.output.lower()
    assert list(out.iterdir()) == [] and _entries(app, "acme") == []


def test_no_log_entry_no_export(make_app, backend, tmp_path, password_hash):
    """Fail closed: with the access log unwritable, the command fails and writes nothing."""
    from core.db import db

    app = make_app(backend)
    make_tenant(app, "acme", password_hash)
    out = tmp_path / "out"
    out.mkdir()
    archive = out / "acme.zip"
    with app.app_context(), db.engine.begin() as conn:
        conn.execute(text("ALTER TABLE access_log RENAME TO access_log_gone"))
    try:
        result = export(app, "acme", "--output", archive)
    finally:
        with app.app_context(), db.engine.begin() as conn:
            conn.execute(text("ALTER TABLE access_log_gone RENAME TO access_log"))
    assert result.exit_code == 1, result.output
    assert "no export written" in result.output and "access-log entry" in result.output
    assert list(out.iterdir()) == []  # neither the archive nor a hidden or partial one
    assert _entries(app, "acme") == []
    assert export(app, "acme", "--output", archive).exit_code == 0  # works again
    assert [e.event for e in _entries(app, "acme")] == ["export"]
