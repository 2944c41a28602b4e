"""The suite's own machinery: the throwaway PostgreSQL of ``make test``, per-worker names."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest

from tests import pgcluster
from tests.fixtures import pg as pg_fixtures

ROOT = Path(__file__).resolve().parent.parent


def _binaries() -> Path:
    found = pgcluster.bindir()
    if found is None:
        if pg_fixtures.REQUIRE_PG:
            pytest.fail("QALITEL_REQUIRE_POSTGRES=1 but no PostgreSQL binaries (pg_config)")
        pytest.skip("no PostgreSQL binaries")
    return found


def _settings(url: str) -> dict[str, str]:
    conn = psycopg2.connect(url, connect_timeout=30)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT name, setting FROM pg_settings WHERE name IN "
                        "('fsync', 'synchronous_commit', 'full_page_writes', "
                        "'listen_addresses')")
            settings = dict(cur.fetchall())
            cur.execute("SELECT 1 FROM pg_roles WHERE rolname = 'qalitel_template_owner'")
            settings["template_owner"] = "yes" if cur.fetchone() else "no"
            cur.execute("SHOW data_directory")
            settings["data_directory"] = cur.fetchone()[0]
    finally:
        conn.close()
    return settings


def test_the_test_cluster_is_tuned_and_gone_after():
    with pgcluster.cluster(_binaries()) as url:
        seen = _settings(url)
    assert (seen["fsync"], seen["synchronous_commit"], seen["full_page_writes"]) == (
        "off", "off", "off")
    assert seen["listen_addresses"] == "127.0.0.1" and seen["template_owner"] == "yes"
    assert not Path(seen["data_directory"]).exists()
    with pytest.raises(psycopg2.OperationalError):
        psycopg2.connect(url, connect_timeout=5).close()


def test_a_port_taken_before_the_server_binds_it_is_replaced(monkeypatch):
    binaries = _binaries()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        offered = iter([port])
        free = pgcluster._free_port
        monkeypatch.setattr(pgcluster, "_free_port", lambda: next(offered, None) or free())
        with pgcluster.cluster(binaries) as url:
            assert f":{port}/" not in url
            assert _settings(url)["fsync"] == "off"


def _run_wrapper(env: dict[str, str]) -> subprocess.CompletedProcess:
    probe = "import os; print(os.environ.get('QALITEL_TEST_PG_URL', ''))"
    return subprocess.run([sys.executable, "-m", "tests.pgcluster", sys.executable, "-c", probe],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
                          check=False)


def test_the_wrapper_hands_its_cluster_to_the_command_and_passes_its_exit_code():
    _binaries()
    env = {k: v for k, v in os.environ.items() if k != "QALITEL_TEST_PG_URL"}
    done = _run_wrapper(env)
    assert done.returncode == 0, done.stderr
    url = done.stdout.strip()
    assert url.startswith("postgresql://postgres@127.0.0.1:") and url in done.stderr
    failing = subprocess.run([sys.executable, "-m", "tests.pgcluster", sys.executable, "-c",
                              "raise SystemExit(7)"], cwd=ROOT, env=env, capture_output=True,
                             text=True, timeout=300, check=False)
    assert failing.returncode == 7


def test_a_given_server_url_is_used_as_it_is():
    env = {**os.environ, "QALITEL_TEST_PG_URL": "postgresql://someone@db.example:6543/x"}
    done = _run_wrapper(env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "postgresql://someone@db.example:6543/x"


def test_each_xdist_worker_has_a_name_prefix_of_its_own(monkeypatch):
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if worker:  # this very process, when it is a worker
        assert pg_fixtures.PG_PREFIX.endswith(f"w{worker[2:]}_")
    ids = set()
    for worker in ("gw0", "gw1", "gw1"):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
        ids.add(pg_fixtures._run_id())
    assert len(ids) == 3 and {run[-2:] for run in ids} == {"w0", "w1"}
    assert len(f"qtt{max(ids, key=len)}_") <= 23  # QALITEL_PG_NAME_PREFIX's limit


def test_a_discarded_app_leaves_nothing_on_the_server(tmp_path, migrated_files,
                                                      template_bytecode, password_hash):
    """Tenant databases and roles, and the roles of maintenance grants, are dropped with the
    app: a test that sweeps or lists this run's PostgreSQL objects sees no one else's."""
    from core.db import db
    from maintenance.models import Grant, StaffUser
    from maintenance.requests import create_request
    from tests.conftest import grant_for_test, make_staff, provision
    from tests.fixtures.apps import AppFactory

    pg_fixtures.require_postgres()
    factory = AppFactory(tmp_path, migrated_files, template_bytecode, own_pg_names=True)
    try:
        app = factory("postgresql")
        prefix = app.extensions["qalitel_settings"].pg_name_prefix
        provision(app, "alpha", password_hash)
        provision(app, "bravo", password_hash)
        with app.app_context():
            engineer = db.session.get(StaffUser, make_staff(app).id)
            public_id = create_request("alpha", engineer, "Investigate ticket #42").public_id
        grant_id = grant_for_test(app, public_id)
        with app.app_context():
            grant_role = db.session.get(Grant, grant_id).role_name
        # databases and roles of alpha and bravo (one name each), the grant's role
        assert _prefixed(prefix) == {f"{prefix}alpha", f"{prefix}bravo", grant_role}
    finally:
        factory.discard()
    assert _prefixed(prefix) == set()


def _prefixed(prefix: str) -> set[str]:
    conn = psycopg2.connect(pg_fixtures.PG_URL, connect_timeout=30)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT datname FROM pg_database WHERE starts_with(datname, %s) "
                        "UNION ALL SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s)",
                        (prefix, prefix))
            return {name for (name,) in cur.fetchall()}
    finally:
        conn.close()
