"""The ``qalitel`` command loads what a command needs: ``tenants list`` builds no page, no
rate limiter, no Alembic and no password hash; ``flask --app wsgi`` still reaches every
command. Real subprocesses on a freshly initialised embedded instance."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
NOT_FOR_LISTING = ("qalitel.views", "qalitel.records.views", "qalitel.user_views",
                   "qalitel.auth.views", "qalitel.prefs_views", "maintenance.console",
                   "maintenance.client_views", "qalitel.users.service", "maintenance.staff",
                   "flask_limiter", "flask_wtf", "flask_login", "alembic", "psycopg2",
                   "tenants.provisioning", "playwright")
REPORT_MODULES = ("import atexit, json, sys\n"
                  "atexit.register(lambda: print(json.dumps(sorted(sys.modules)), "
                  "file=sys.stderr))\n")


@pytest.fixture
def instance_env(tmp_path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("QALITEL_")}
    env["QALITEL_INSTANCE_DIR"] = str(tmp_path / "instance")
    done = subprocess.run([str(BIN / "qalitel"), "init"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return env


def python(env: dict[str, str], code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False)


def loaded_modules(done: subprocess.CompletedProcess) -> set[str]:
    return set(json.loads(done.stderr.strip().splitlines()[-1]))


def test_tenants_list_loads_no_page_and_hashes_nothing(instance_env):
    done = python(instance_env, REPORT_MODULES
                  + "sys.argv = ['qalitel', 'tenants', 'list', '--json']\n"
                    "from qalitel.cli import main\nmain()\n")
    assert json.loads(done.stdout) == []
    loaded = loaded_modules(done)
    assert "flask_sqlalchemy" in loaded  # the report is real: the platform database was read
    assert sorted(loaded & set(NOT_FOR_LISTING)) == []


def test_building_the_full_app_computes_no_password_hash(instance_env):
    done = python(instance_env,
                  "from qalitel import create_app\n"
                  "app = create_app()\n"
                  "from maintenance import staff\n"
                  "from qalitel.users import service\n"
                  "assert 'tenant.users.create' in app.view_functions\n"
                  "print(service._dummy_hash.cache_info().currsize,"
                  " staff._dummy_hash.cache_info().currsize)\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0", "0"]


def test_help_names_every_command_group(instance_env):
    from qalitel.cli import COMMANDS

    done = subprocess.run([str(BIN / "qalitel"), "--help"], env=instance_env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    listed = {line.split()[0] for line in done.stdout.split("Commands:", 1)[1].splitlines()
              if line.strip()}
    assert listed == set(COMMANDS) | {"run", "shell", "routes"}


def test_flask_app_wsgi_reaches_the_same_commands(instance_env):
    flask = [str(BIN / "flask"), "--app", "wsgi"]
    created = subprocess.run(
        [*flask, "tenants", "create", "acme", "--name", "Acme", "--admin-email",
         "admin@acme.example", "--admin-password", "correct horse battery staple"],
        env=instance_env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert created.returncode == 0, created.stderr
    for command in ([str(BIN / "qalitel"), "tenants", "list", "--json"],
                    [*flask, "tenants", "list", "--json"]):
        done = subprocess.run(command, env=instance_env, cwd=ROOT, capture_output=True,
                              text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        assert [row["slug"] for row in json.loads(done.stdout)] == ["acme"]


def test_a_command_needing_pages_gets_the_full_app(instance_env):
    done = subprocess.run([str(BIN / "qalitel"), "routes"], env=instance_env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "/t/<slug:slug>/login" in done.stdout and "/staff/" in done.stdout
