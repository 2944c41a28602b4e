"""Provisioning is all or nothing, and racers on one slug cannot both win.

A failure injected after each step of ``tenants.provisioning.STEPS`` (and a real database
failure inside the first-admin insert) must leave no registry row, no file, and on
PostgreSQL no database and no role.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.conftest import PASSWORD, PG_PREFIX, PG_URL, login

ADMIN = "admin@{slug}.example"


class InjectedFault(RuntimeError):
    pass


def _settings(app):
    return app.extensions["qalitel_settings"]


def _create(app, slug: str, password_hash: str, **kwargs):
    from core.db import db
    from tenants.provisioning import create_tenant

    with app.app_context():
        result = create_tenant(_settings(app), slug, slug.title(), ADMIN.format(slug=slug),
                               PASSWORD, admin_name=f"Admin {slug}",
                               password_hash=password_hash, **kwargs)
        db.session.refresh(result.tenant)  # loaded, so readable after the context
        return result


def _tenant_files(app) -> list[str]:
    """Files in the SQLite tenant folder, except the shared template and its lock."""
    folder = _settings(app).sqlite_tenant_dir
    if not folder.exists():
        return []
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith(".template"))


def _pg_objects(name: str) -> tuple[bool, bool]:
    from tenants import pg

    with pg.admin_connection(PG_URL) as conn:
        return pg.database_exists(conn, name), pg.role_exists(conn, name)


def _registry_slugs(app) -> list[tuple[str, str]]:
    from core.db import db
    from tenants.registry import Tenant

    with app.app_context():
        rows = db.session.execute(select(Tenant.slug, Tenant.status)).all()
        return sorted((slug, status.value) for slug, status in rows)


def assert_nothing_left(app, slug: str, *, others: tuple[str, ...] = ()) -> None:
    assert [s for s, _status in _registry_slugs(app) if s not in others] == []
    files = [f for f in _tenant_files(app)
             if not any(f == f"{o}.sqlite3" or f.startswith(f"{o}.sqlite3-") for o in others)]
    assert files == [], files
    if _settings(app).tenant_server_url:
        assert _pg_objects(f"{PG_PREFIX}{slug}") == (False, False)


def assert_tenant_works(app, slug: str) -> None:
    client = app.test_client()
    response = login(client, slug, ADMIN.format(slug=slug))
    assert response.status_code == 302, response.status_code
    assert client.get(f"/t/{slug}/").status_code == 200


# ---------------------------------------------------------------- happy path


def test_create_tenant_on_backend(app, backend, password_hash):
    from tenants.registry import Backend, TenantStatus

    result = _create(app, "acme", password_hash)
    tenant = result.tenant
    assert tenant.status is TenantStatus.ACTIVE
    assert tenant.backend is Backend(backend)
    assert set(result.timings) >= {"hash", "registry", "admin", "activate"}
    assert _registry_slugs(app) == [("acme", "active")]
    if backend == "sqlite":
        assert _tenant_files(app) == ["acme.sqlite3"]
        assert tenant.role_name is None
    else:
        assert _tenant_files(app) == []
        assert tenant.database_name == tenant.role_name == f"{PG_PREFIX}acme"
        assert _pg_objects(tenant.database_name) == (True, True)
    assert_tenant_works(app, "acme")


def test_longest_slug_fits_every_backend(app, password_hash):
    slug = "a" + "b-c" * 13  # 40 characters
    assert len(slug) == 40
    _create(app, slug, password_hash)
    assert_tenant_works(app, slug)


def test_generated_password_is_returned_once(app, backend):
    from tenants.provisioning import create_tenant

    with app.app_context():
        result = create_tenant(_settings(app), "gen", "Gen", "boss@gen.example")
    assert result.generated_password and len(result.admin_password) >= 16
    client = app.test_client()
    assert login(client, "gen", "boss@gen.example", result.admin_password).status_code == 302


def test_duplicate_slug_is_refused_and_leaves_original(app, backend, password_hash):
    from tenants.provisioning import ProvisioningError

    _create(app, "acme", password_hash)
    with pytest.raises(ProvisioningError, match="already exists"):
        _create(app, "acme", password_hash)
    assert _registry_slugs(app) == [("acme", "active")]
    assert_tenant_works(app, "acme")


# ---------------------------------------------------------------- atomicity


def _steps() -> tuple[str, ...]:
    from tenants.provisioning import STEPS

    return STEPS


@pytest.mark.parametrize("step", _steps())
def test_failure_at_each_step_leaves_nothing(app, backend, password_hash, step):
    from tenants.provisioning import ProvisioningError

    seen: list[str] = []

    def fault(label: str) -> None:
        seen.append(label)
        if label == step:
            raise InjectedFault(f"injected at {label}")

    with pytest.raises(ProvisioningError) as info:
        _create(app, "acme", password_hash, fault=fault)
    assert f"injected at {step}" in str(info.value)
    assert "acme" in str(info.value)
    assert isinstance(info.value.__cause__, InjectedFault)
    assert seen[-1] == step
    assert_nothing_left(app, "acme")
    with app.app_context():
        assert app.extensions["qalitel_engines"].checked_out() == 0
    # The slug is free again, and a clean run succeeds.
    result = _create(app, "acme", password_hash, fault=seen.append)
    assert seen[-len(_steps()):] == list(_steps())
    assert result.tenant.slug == "acme"
    assert_tenant_works(app, "acme")


def test_every_step_is_reached_in_order(app, backend, password_hash):
    seen: list[str] = []
    _create(app, "acme", password_hash, fault=seen.append)
    assert seen == list(_steps())


def test_failure_leaves_other_tenants_alone(app, backend, password_hash):
    from tenants.provisioning import ProvisioningError

    _create(app, "keep", password_hash)

    def fault(label: str) -> None:
        if label == "identity":
            raise InjectedFault("boom")

    with pytest.raises(ProvisioningError):
        _create(app, "lost", password_hash, fault=fault)
    assert_nothing_left(app, "lost", others=("keep",))
    assert _registry_slugs(app) == [("keep", "active")]
    assert_tenant_works(app, "keep")


@contextmanager
def admin_insert_refused(app, backend: str):
    """A real trigger in the tenant template that refuses a first admin at @refused.example."""
    from tenants import pg
    from tenants.provisioning import ensure_server, ensure_sqlite_template, migrate_pg_template

    settings = _settings(app)
    if backend == "sqlite":
        import sqlite3

        with app.app_context():
            template = ensure_sqlite_template(settings)
        conn = sqlite3.connect(template)
        conn.execute("CREATE TRIGGER qtt_refuse_admin BEFORE INSERT ON users "
                     "WHEN NEW.email LIKE '%@refused.example' "
                     "BEGIN SELECT RAISE(ABORT, 'first admin refused by test trigger'); END")
        conn.commit()
        conn.close()
        try:
            yield
        finally:
            conn = sqlite3.connect(template)
            conn.execute("DROP TRIGGER IF EXISTS qtt_refuse_admin")
            conn.commit()
            conn.close()
        return
    with app.app_context():
        server = ensure_server(settings, "default", settings.tenant_server_url)
        migrate_pg_template(settings, server)
    with pg.admin_connection(PG_URL, settings.template_database) as conn, conn.cursor() as cur:
        cur.execute("""
            CREATE FUNCTION qtt_refuse_admin() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF NEW.email LIKE '%@refused.example' THEN
                RAISE EXCEPTION 'first admin refused by test trigger';
              END IF;
              RETURN NEW;
            END $$;
            CREATE TRIGGER qtt_refuse_admin BEFORE INSERT ON users
              FOR EACH ROW EXECUTE FUNCTION qtt_refuse_admin();
        """)
    try:
        yield
    finally:
        with pg.admin_connection(PG_URL, settings.template_database) as conn, \
                conn.cursor() as cur:
            cur.execute("DROP TRIGGER IF EXISTS qtt_refuse_admin ON users; "
                        "DROP FUNCTION IF EXISTS qtt_refuse_admin()")


def test_failure_inside_first_admin_insert_leaves_nothing(app, backend, password_hash):
    from tenants.provisioning import ProvisioningError, create_tenant

    settings = _settings(app)
    with admin_insert_refused(app, backend), app.app_context():
        with pytest.raises(ProvisioningError, match="first admin refused by test trigger"):
            create_tenant(settings, "refused", "Refused", "admin@refused.example", PASSWORD,
                          password_hash=password_hash)
        assert_nothing_left(app, "refused")
        # The same template still provisions anybody else.
        ok = create_tenant(settings, "fine", "Fine", "admin@fine.example", PASSWORD,
                           password_hash=password_hash)
        assert ok.tenant.slug == "fine"
    assert_tenant_works(app, "fine")
    # Once the trigger is gone, the refused slug can be created.
    _create(app, "refused", password_hash)
    assert_tenant_works(app, "refused")


def test_leftover_database_blocks_then_sweep_frees_the_slug(app, backend, password_hash):
    """A crash leaving a file / database behind without a registry row: creation is refused
    clearly (never adopts the leftover), and ``sweep`` frees the slug."""
    from tenants import pg
    from tenants.provisioning import ProvisioningError, ensure_server, sweep

    settings = _settings(app)
    if backend == "sqlite":
        settings.sqlite_tenant_dir.mkdir(parents=True, exist_ok=True)
        (settings.sqlite_tenant_dir / "acme.sqlite3").write_bytes(b"leftover")
    else:
        with app.app_context():
            ensure_server(settings, "default", settings.tenant_server_url)
        with pg.admin_connection(PG_URL) as conn, conn.cursor() as cur:
            cur.execute(f'CREATE ROLE "{PG_PREFIX}acme" NOLOGIN')
    with pytest.raises(ProvisioningError, match="already exists.*sweep"):
        _create(app, "acme", password_hash)
    assert _registry_slugs(app) == []
    with app.app_context():
        removed = sweep(settings, older_than_s=600)
    assert removed
    _create(app, "acme", password_hash)
    assert_tenant_works(app, "acme")


# ---------------------------------------------------------------- concurrency


def _race(app, slugs: list[str], password_hash: str) -> dict[str, list]:
    """Create ``slugs`` at once, one thread (and app context) each."""
    from tenants.provisioning import create_tenant

    barrier = threading.Barrier(len(slugs))
    outcomes: dict[str, list] = {"ok": [], "error": []}
    lock = threading.Lock()

    def run(index: int, slug: str) -> None:
        try:
            with app.app_context():
                barrier.wait(timeout=30)
                result = create_tenant(_settings(app), slug, f"Racer {index}",
                                       ADMIN.format(slug=slug), PASSWORD,
                                       admin_name=f"Admin {index}", password_hash=password_hash)
                with lock:
                    outcomes["ok"].append((slug, result.tenant.uid, index))
        except Exception as exc:
            with lock:
                outcomes["error"].append((slug, exc, index))

    threads = [threading.Thread(target=run, args=(i, s)) for i, s in enumerate(slugs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    return outcomes


def test_concurrent_creation_of_one_slug_has_one_winner(app, backend, password_hash):
    from tenants.provisioning import ProvisioningError

    outcomes = _race(app, ["acme", "acme", "acme"], password_hash)
    assert len(outcomes["ok"]) == 1, outcomes
    assert len(outcomes["error"]) == 2
    for _slug, exc, _index in outcomes["error"]:
        assert isinstance(exc, ProvisioningError), repr(exc)
        assert "already exists" in str(exc)
    assert _registry_slugs(app) == [("acme", "active")]
    if backend == "sqlite":
        assert _tenant_files(app) in (["acme.sqlite3"], ["acme.sqlite3", "acme.sqlite3-shm",
                                                          "acme.sqlite3-wal"])
    else:
        assert _tenant_files(app) == []
        assert _pg_objects(f"{PG_PREFIX}acme") == (True, True)
    # The winner's data is what the tenant serves.
    _slug, uid, index = outcomes["ok"][0]
    from tenants.service import get_tenant

    with app.app_context():
        tenant = get_tenant("acme")
        assert (tenant.uid, tenant.name) == (uid, f"Racer {index}")
    assert_tenant_works(app, "acme")


@pytest.mark.parametrize("step", ["registry", "database", "identity", "admin"])
def test_second_creation_while_first_is_midway_is_refused(app, backend, password_hash, step):
    """Deterministic interleaving: B tries the slug while A is paused after ``step``."""
    from tenants.provisioning import ProvisioningError

    paused, resume = threading.Event(), threading.Event()
    result: dict[str, object] = {}

    def hold(label: str) -> None:
        if label == step:
            paused.set()
            assert resume.wait(timeout=60)

    def first() -> None:
        try:
            result["ok"] = _create(app, "acme", password_hash, fault=hold)
        except Exception as exc:  # reported below
            result["error"] = exc

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert paused.wait(timeout=60), result
        with pytest.raises(ProvisioningError, match="already exists"):
            _create(app, "acme", password_hash)
        # While A is midway, the tenant is not served.
        assert app.test_client().get("/t/acme/login").status_code == 404
    finally:
        resume.set()
        thread.join(timeout=60)
    assert "error" not in result, result.get("error")
    assert _registry_slugs(app) == [("acme", "active")]
    assert_tenant_works(app, "acme")


def test_concurrent_creation_of_different_slugs_all_succeed(app, backend, password_hash):
    slugs = ["gamma", "delta", "omega"]
    outcomes = _race(app, slugs, password_hash)
    assert outcomes["error"] == [], outcomes["error"]
    assert sorted(s for s, _uid, _i in outcomes["ok"]) == sorted(slugs)
    assert _registry_slugs(app) == sorted((s, "active") for s in slugs)
    for slug in slugs:
        assert_tenant_works(app, slug)
        if backend == "postgresql":
            assert _pg_objects(f"{PG_PREFIX}{slug}") == (True, True)


def _cli_env(app) -> dict[str, str]:
    settings = _settings(app)
    env = {k: v for k, v in os.environ.items() if not k.startswith("QALITEL_")}
    env.update({
        "QALITEL_INSTANCE_DIR": str(settings.instance_dir),
        "QALITEL_DATABASE_URL": settings.database_url,
        "QALITEL_SECRET_KEY": settings.secret_key,
        "QALITEL_ENCRYPTION_KEY": settings.encryption_key,
        "QALITEL_TENANT_SERVER_URL": settings.tenant_server_url,
        "QALITEL_PG_NAME_PREFIX": settings.pg_name_prefix,
        "QALITEL_TEMPLATE_DATABASE": settings.template_database,
        "QALITEL_ENGINE_CACHE_SIZE": str(settings.engine_cache_size),
        "QALITEL_TENANT_POOL_SIZE": str(settings.tenant_pool_size),
    })
    return env


QALITEL = str(Path(sys.executable).with_name("qalitel"))


def test_two_processes_creating_one_slug(app, backend):
    """Two ``qalitel tenants create`` processes for one slug: one wins, one fails clearly."""
    env = _cli_env(app)
    command = [QALITEL, "tenants", "create", "acme", "--name", "Acme",
               "--admin-email", "admin@acme.example", "--admin-password", PASSWORD]
    procs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    codes = sorted(code for code, _out, _err in results)
    assert codes == [0, 1], results
    winner = next(r for r in results if r[0] == 0)
    loser = next(r for r in results if r[0] == 1)
    assert f"tenant acme created on {backend}" in winner[1]
    assert "already exists" in loser[2] and "Traceback" not in loser[2]
    assert _registry_slugs(app) == [("acme", "active")]
    assert_tenant_works(app, "acme")
