"""The ``qalitel tenants`` commands: bad input is refused clearly and leaves nothing behind;
listing, suspending, resuming and sweeping behave as operators and cron expect."""

from __future__ import annotations

import json
import os
import secrets
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from tests.conftest import PASSWORD, PG_PREFIX, PG_URL, login, provision

GOOD = {"slug": "acme", "name": "Acme", "email": "admin@acme.example", "password": PASSWORD}


def _settings(app):
    return app.extensions["qalitel_settings"]


def run(app, *args: str):
    return app.test_cli_runner().invoke(args=list(args))


def create(app, slug: str = GOOD["slug"], *, name: str = GOOD["name"],
           email: str = GOOD["email"], password: str | None = GOOD["password"],
           extra: tuple[str, ...] = ()):
    args = ["tenants", "create", "--name", name, "--admin-email", email, *extra]
    if password is not None:
        args += ["--admin-password", password]
    return run(app, *args, "--", slug)  # "--": a slug like "-acme" is not an option


def _pg_names() -> set[str]:
    from tenants import pg

    with pg.admin_connection(PG_URL) as conn, conn.cursor() as cur:
        cur.execute("SELECT datname FROM pg_database WHERE starts_with(datname, %s) "
                    "UNION ALL SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s)",
                    (PG_PREFIX, PG_PREFIX))
        return {row[0] for row in cur.fetchall()}


def snapshot(app) -> dict:
    """Everything a provisioning could leave: registry rows, tenant files, PG objects."""
    from core.db import db
    from tenants.registry import Tenant

    with app.app_context():
        slugs = sorted(db.session.execute(select(Tenant.slug)).scalars())
    folder = _settings(app).sqlite_tenant_dir
    files = sorted(p.name for p in folder.iterdir()
                   if not p.name.startswith(".template")) if folder.exists() else []
    names = sorted(_pg_names()) if _settings(app).tenant_server_url else []
    return {"registry": slugs, "files": files, "pg": names}


def assert_refused(app, result, *fragments: str) -> None:
    assert result.exit_code != 0, result.output
    assert result.exit_code == 1 or result.exit_code == 2, result.exit_code
    assert "Error" in result.output, result.output
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    for fragment in fragments:
        assert fragment in result.output, (fragment, result.output)


# ---------------------------------------------------------------- create: the good case


def test_create_list_and_sign_in(app, backend):
    result = create(app)
    assert result.exit_code == 0, result.output
    assert f"tenant acme created on {backend}" in result.output
    assert "admin: admin@acme.example" in result.output
    assert "password (shown once)" not in result.output
    assert PASSWORD not in result.output
    listing = run(app, "tenants", "list", "--json")
    assert listing.exit_code == 0, listing.output
    rows = json.loads(listing.output)
    assert [(r["slug"], r["status"], r["backend"], r["name"]) for r in rows] == [
        ("acme", "active", backend, "Acme")]
    assert rows[0]["schema_revision"] and rows[0]["created_at"]
    datetime.fromisoformat(rows[0]["created_at"])
    plain = run(app, "tenants", "list")
    assert plain.exit_code == 0 and "acme" in plain.output and "active" in plain.output
    client = app.test_client()
    assert login(client, "acme", "admin@acme.example").status_code == 302


def test_generated_password_is_printed_once_and_works(app, backend):
    result = create(app, password=None)
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if x.startswith("password (shown once)"))
    password = line.split(": ", 1)[1].strip()
    assert len(password) >= 16
    client = app.test_client()
    assert login(client, "acme", "admin@acme.example", password).status_code == 302
    assert password not in run(app, "tenants", "list", "--json").output


def test_list_json_empty_and_several(app, backend, password_hash):
    empty = run(app, "tenants", "list", "--json")
    assert empty.exit_code == 0 and json.loads(empty.output) == []
    provision(app, "alpha", password_hash, records=0)
    provision(app, "bravo", password_hash, records=0, name='Bravo "Quotes" & <Co>')
    assert run(app, "tenants", "suspend", "bravo").exit_code == 0
    rows = json.loads(run(app, "tenants", "list", "--json").output)
    assert [(r["slug"], r["status"]) for r in rows] == [("alpha", "active"),
                                                        ("bravo", "suspended")]
    assert rows[1]["name"] == 'Bravo "Quotes" & <Co>'
    for row in rows:
        assert row["backend"] == backend
        assert not {"role_password_encrypted", "password", "url"} & set(row)
        assert "encrypted" not in json.dumps(row)


# ---------------------------------------------------------------- create: bad input

BAD_SLUGS = [
    "a'; DROP DATABASE x;--", 'x"y', "x'y", "acme;", "ac me", "acme/x", "../acme", "acme\n",
    "acme\x00", "café", "\u0430lpha", "\u0430dmin", "асme", "ａcme", "acme\u200b",
    "www", "staff", "admin", "api", "static", "healthz", "template1", "postgres",
    "a" * 41, "a", "1acme", "9", "-acme", "Acme", "ACME", "acme-", "ac--me", "",
    "acme_co", "acme.co",
]


def test_bad_slugs_are_refused_and_leave_nothing(app, backend):
    before = snapshot(app)
    for slug in BAD_SLUGS:
        result = create(app, slug)
        assert_refused(app, result)
        assert "slug" in result.output, (slug, result.output)
    assert snapshot(app) == before
    # The same command with a good slug works, so the refusals were about the slug.
    assert create(app).exit_code == 0


def test_sql_in_slug_never_reaches_the_database(app, backend):
    result = create(app, 'a"; DROP DATABASE "postgres";--')
    assert_refused(app, result, "invalid slug")
    if backend == "postgresql":
        from tenants import pg

        with pg.admin_connection(PG_URL) as conn:
            assert pg.database_exists(conn, "postgres")


BAD_NAMES = ["x" * 201, "Bad\x00Name", "Bad\nName", "Bad\rName", "Bad\x1bName", "Bad\x7fName",
             "Bad\x85Name", "Bad\u2028Name", "Bad\u202eemaN", "Bad\u200bName", "", "   ", "\t"]


def test_bad_company_names_are_refused(app, backend):
    before = snapshot(app)
    for name in BAD_NAMES:
        result = create(app, name=name)
        assert_refused(app, result, "name")
        assert "acme" not in [r for r in snapshot(app)["registry"]]
    assert snapshot(app) == before
    # Non-ASCII letters, punctuation and exactly 200 characters are fine.
    assert create(app, name="Société Générale & Fils — Qualité (Ω)").exit_code == 0
    assert create(app, "long-name", name="y" * 200, email="a@long.example").exit_code == 0


def test_bad_admin_names_are_refused(app, backend):
    before = snapshot(app)
    for name in ("z" * 201, "Eve\x00", "Eve\nMallory", "Eve\u202e"):
        assert_refused(app, create(app, extra=("--admin-name", name)), "admin name")
    assert snapshot(app) == before


BAD_EMAILS = ["not-an-email", "a@", "@acme.example", "a b@acme.example", "a@acme example",
              "<a>@acme.example", "a@acme.example>", "a,b@acme.example", "a@-acme.example",
              "a@acme.example-", "a\x00b@acme.example", "a\x7f@acme.example",
              "x" * 65 + "@acme.example", "a@" + "b" * 260 + ".example", "", "a@@acme.example",
              "a@acme.example\nBcc: x@evil.example"]


def test_bad_emails_are_refused(app, backend):
    before = snapshot(app)
    for email in BAD_EMAILS:
        assert_refused(app, create(app, email=email), "email")
    assert snapshot(app) == before


@pytest.mark.parametrize("password", ["", "short", "123456789", "x" * 1025])
def test_bad_admin_passwords_are_refused(app, password):
    before = snapshot(app)
    assert_refused(app, create(app, password=password), "password")
    assert snapshot(app) == before


def test_unknown_server_or_backend_is_refused(app, backend):
    before = snapshot(app)
    assert_refused(app, create(app, extra=("--server", "nosuch")), "nosuch")
    result = create(app, extra=("--backend", "oracle"))
    assert result.exit_code == 2 and "oracle" in result.output
    assert snapshot(app) == before


def test_postgresql_backend_without_server_is_refused(make_app):
    app = make_app("sqlite")
    before = snapshot(app)
    assert_refused(app, create(app, extra=("--backend", "postgresql")),
                   "no PostgreSQL server configured")
    assert snapshot(app) == before


def test_existing_slug_is_refused(app, backend):
    assert create(app).exit_code == 0
    before = snapshot(app)
    assert_refused(app, create(app, name="Other", email="x@other.example"), "already exists")
    assert snapshot(app) == before


# ---------------------------------------------------------------- suspend / resume


def test_suspend_and_resume_unknown_or_bad_slug_fail(app, backend, password_hash):
    provision(app, "alpha", password_hash, records=0)
    for command in ("suspend", "resume"):
        assert_refused(app, run(app, "tenants", command, "nosuch"), "no tenant 'nosuch'")
        assert_refused(app, run(app, "tenants", command, "Bad'slug"), "invalid slug")
        assert_refused(app, run(app, "tenants", command, "www"), "reserved")
        result = run(app, "tenants", command)
        assert result.exit_code == 2 and "SLUG" in result.output
    rows = json.loads(run(app, "tenants", "list", "--json").output)
    assert [(r["slug"], r["status"]) for r in rows] == [("alpha", "active")]


def test_suspend_resume_round_trip(app, backend, password_hash):
    provision(app, "alpha", password_hash, records=0)
    result = run(app, "tenants", "suspend", "alpha")
    assert result.exit_code == 0 and "tenant alpha is suspended" in result.output
    assert app.test_client().get("/t/alpha/login").status_code == 423
    result = run(app, "tenants", "resume", "alpha")
    assert result.exit_code == 0 and "tenant alpha is active" in result.output
    assert app.test_client().get("/t/alpha/login").status_code == 200


# ---------------------------------------------------------------- sweep


def _stale_row(app, slug: str, backend: str, *, age_s: float):
    """A registry row stuck in ``provisioning``, as a crash would leave it."""
    from core.db import db
    from tenants.provisioning import ensure_server
    from tenants.registry import Backend, Tenant, TenantStatus

    with app.app_context():
        server = (ensure_server(_settings(app), "default", _settings(app).tenant_server_url)
                  if backend == "postgresql" else None)
        tenant = Tenant(slug=slug, name=slug.title(), status=TenantStatus.PROVISIONING,
                        backend=Backend(backend), server_id=server.id if server else None,
                        database_name=(f"{PG_PREFIX}{slug}" if server else f"{slug}.sqlite3"),
                        created_at=datetime.now(UTC) - timedelta(seconds=age_s))
        db.session.add(tenant)
        db.session.commit()


def test_sweep_removes_unclaimed_leftovers(app, backend, password_hash):
    from tenants import pg

    keep = provision(app, "keep", password_hash, records=1)
    settings = _settings(app)
    folder = settings.sqlite_tenant_dir
    token = secrets.token_hex(3)
    expected: set[str] = set()
    # A crash long ago, and a provisioning still running now (must be spared).
    _stale_row(app, "stale", backend, age_s=3600)
    _stale_row(app, "running", backend, age_s=1)
    expected.add("registry:stale")
    # Leftovers nobody claims.
    (folder / f"orphan{token}.sqlite3").write_bytes(b"x")
    (folder / f"orphan{token}.sqlite3-wal").write_bytes(b"x")
    work = folder / f".lost{token}.sqlite3.abcd1234.provisioning"
    work.write_bytes(b"x")
    old = time.time() - 3600
    os.utime(work, (old, old))
    fresh_work = folder / f".busy{token}.sqlite3.abcd1234.provisioning"
    fresh_work.write_bytes(b"x")
    expected |= {f"file:orphan{token}.sqlite3", f"file:orphan{token}.sqlite3-wal",
                 f"file:{work.name}"}
    if backend == "sqlite":
        (folder / "stale.sqlite3").write_bytes(b"x")
        (folder / "running.sqlite3").write_bytes(b"x")
    else:
        with pg.admin_connection(PG_URL) as conn, conn.cursor() as cur:
            for name in (f"{PG_PREFIX}orphan{token}", f"{PG_PREFIX}stale",
                         f"{PG_PREFIX}running"):
                cur.execute(f'CREATE DATABASE "{name}"')
            for name in (f"{PG_PREFIX}orphanrole{token}", f"{PG_PREFIX}stale",
                         f"{PG_PREFIX}running"):
                cur.execute(f'CREATE ROLE "{name}" NOLOGIN')
        expected |= {f"database:{PG_PREFIX}orphan{token}", f"role:{PG_PREFIX}orphanrole{token}",
                     f"role:{PG_PREFIX}stale"}
    result = run(app, "tenants", "sweep")
    assert result.exit_code == 0, result.output
    removed = set(result.output.split())
    assert expected <= removed, (expected - removed, result.output)
    assert not any("keep" in item or "running" in item or "template" in item
                   for item in removed), result.output
    # Gone ...
    after = snapshot(app)
    assert after["registry"] == ["keep", "running"]
    assert f"orphan{token}.sqlite3" not in after["files"]
    assert f"orphan{token}.sqlite3-wal" not in after["files"]
    assert not work.exists()
    # ... and spared: the live tenant, the running provisioning, the template.
    assert fresh_work.exists()
    if backend == "sqlite":
        assert "stale.sqlite3" not in after["files"]
        assert "running.sqlite3" in after["files"] and "keep.sqlite3" in after["files"]
        assert any(p.name.startswith(".template-") for p in folder.iterdir())
    else:
        assert set(after["pg"]) == {f"{PG_PREFIX}keep", f"{PG_PREFIX}running",
                                    settings.template_database}
    client = app.test_client()
    assert login(client, "keep", keep.admin_email).status_code == 302
    assert client.get(f"/t/keep/records/{keep.record_ids[0]}").status_code == 200
    # Nothing left to sweep; and the template still clones (PostgreSQL) / copies (SQLite).
    again = run(app, "tenants", "sweep")
    assert again.exit_code == 0 and "nothing to sweep" in again.output
    assert create(app, "after", email="admin@after.example").exit_code == 0
    assert login(app.test_client(), "after", "admin@after.example").status_code == 302


def test_sweep_older_than_zero_takes_running_rows(app, backend):
    _stale_row(app, "stuck", backend, age_s=5)
    result = run(app, "tenants", "sweep", "--older-than", "0")
    assert result.exit_code == 0 and "registry:stuck" in result.output
    assert snapshot(app)["registry"] == []
    assert_refused(app, run(app, "tenants", "sweep", "--older-than", "-1"))


def test_sweep_names_an_unreachable_server(make_app):
    from tenants.provisioning import ensure_server

    app = make_app("sqlite")
    with app.app_context():
        ensure_server(app.extensions["qalitel_settings"], "dead",
                      "postgresql://postgres@127.0.0.1:1/postgres")
    result = app.test_cli_runner().invoke(args=["tenants", "sweep"])
    assert result.exit_code == 1
    assert "cannot reach database server 'dead'" in result.output
    assert "Traceback" not in result.output
