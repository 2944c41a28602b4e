"""The host's own jobs through ``qalitel jobs run-due``, on both backends (tenants and platform
database alike): backups, prune, deep verification, maintenance expiry and the files sweep
run once and then are not due; the clock moved 31 days makes prune remove exactly what is
due; the per-tenant backup lease makes ``backup run`` skip a tenant another host is backing
up; and a real ``qalitel jobs run-due`` process skips a job whose lease is held elsewhere."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.clock import ManualClock, set_clock
from core.jobs import lease
from tests.backup_world import BackupWorld, make_world

START = datetime(2030, 1, 1, 3, 0, tzinfo=UTC)
HOST_JOBS = ["maintenance-expiry", "backups", "backup-prune", "backup-deep-verify",
             "backup-sweep", "closures", "exports", "files-sweep", "jobs-ledger-prune",
             "retention", "notifications"]


@pytest.fixture
def world(platform_database, make_app, backend, tmp_path, password_hash) -> BackupWorld:
    overrides = {"database_url": platform_database} if platform_database else {}
    return make_world(make_app, backend, tmp_path, password_hash, **overrides)


def _run_due(world: BackupWorld, code: int = 0) -> dict:
    result = world.run("jobs", "run-due", "--json")
    assert result.exit_code == code, result.output
    return {j["job"]: j for j in json.loads(result.stdout)["jobs"]}


def _outcomes(report: dict) -> dict[str, str]:
    return {name: job["outcome"] for name, job in report.items()}


def test_run_due_runs_every_host_job_once(world):
    clock = ManualClock(START)
    set_clock(world.app, clock)
    report = _run_due(world)
    assert list(report) == HOST_JOBS
    assert set(_outcomes(report).values()) == {"ok"}
    assert report["backups"]["summary"] == {"backed_up": ["acme"], "skipped": []}
    assert report["backup-deep-verify"]["summary"] == {"verified": ["acme"]}
    assert report["backup-prune"]["summary"] == {"pruned": []}
    assert report["closures"]["summary"]["dropped"] == [] == report["closures"]["summary"]["purged"]
    assert [b["status"] for b in world.catalogue()] == ["complete"]
    assert set(_outcomes(_run_due(world)).values()) == {"not-due"}  # idempotent

    clock.advance(hours=1)  # the backups job is due again, but acme's backup is recent
    again = _run_due(world)
    assert again["backups"]["outcome"] == "ok" and again["backups"]["summary"]["backed_up"] == []
    assert len(world.catalogue()) == 1
    status = world.run("jobs", "status")
    assert status.exit_code == 0
    assert "backups: every 1 h, last 2030-01-01 04:00:00Z ok" in status.output
    assert "backup-prune: every 1 d" in status.output


def test_the_clock_moved_31_days_makes_prune_due_and_it_removes_exactly_what_is_due(world):
    clock = ManualClock(START)
    set_clock(world.app, clock)
    _run_due(world)  # backup 1, day 0
    clock.set(START + timedelta(days=1))
    assert _run_due(world)["backups"]["summary"]["backed_up"] == ["acme"]  # backup 2, day 1
    names = [b["key"].rsplit("/", 1)[1] for b in world.catalogue()]
    clock.set(START + timedelta(days=30))
    report = _run_due(world)
    assert report["backup-prune"]["outcome"] == "ok"
    assert report["backup-prune"]["summary"] == {"pruned": []}  # 30 days old: not yet due

    clock.set(START + timedelta(days=31))
    report = _run_due(world)
    assert report["backup-prune"]["summary"] == {"pruned": [1]}
    statuses = [b["status"] for b in world.catalogue()]
    assert statuses == ["pruned", "complete", "complete", "complete"]
    for medium in world.media:
        left = sorted(p.name for p in world.archives(medium))
        assert names[0] not in left and names[1] in left and len(left) == 3
    assert _outcomes(_run_due(world))["backup-prune"] == "not-due"


def test_a_held_backup_lease_makes_backup_run_skip_that_tenant(world):
    with world.app.app_context():
        other = lease.acquire(f"backup:{world.uid}", timedelta(minutes=10),
                              "other-host:77:backup")
        assert other is not None
    skipped = world.run("backup", "run", "acme", "--json")
    assert skipped.exit_code == 0, skipped.output
    [outcome] = json.loads(skipped.stdout)["backups"]
    assert (outcome["status"], outcome["skipped"]) == ("skipped", "running elsewhere")
    assert world.catalogue() == []
    text = world.run("backup", "run", "--all")
    assert text.exit_code == 0 and "acme: skipped (running elsewhere)" in text.output

    report = _run_due(world)  # the job is not failed by it: acme is backed up elsewhere
    assert report["backups"]["outcome"] == "ok"
    assert report["backups"]["summary"] == {"backed_up": [], "skipped": ["acme"]}
    assert world.catalogue() == []
    with world.app.app_context():
        other.release()
    done = world.run("backup", "run", "acme")
    assert done.exit_code == 0 and "acme: backup 1 complete" in done.output
    with world.app.app_context():  # the run released its lease
        assert lease.acquire(f"backup:{world.uid}") is not None


def test_a_failing_job_fails_run_due_and_the_others_still_run(world):
    world.configure(backup_recipient="")
    result = world.run("jobs", "run-due", "--json")
    assert result.exit_code == 1
    assert "job backups failed: QALITEL_BACKUP_RECIPIENT is not set" in result.stderr
    report = {j["job"]: j for j in json.loads(result.stdout)["jobs"]}
    assert report["backups"]["outcome"] == "failed"
    assert report["maintenance-expiry"]["outcome"] == "ok"
    assert report["files-sweep"]["outcome"] == "ok"


def _environment(settings) -> dict[str, str]:
    """The QALITEL_* variables that configure a process exactly as ``settings`` does."""
    from core.config import VARIABLES

    env = {k: v for k, v in os.environ.items() if not k.startswith("QALITEL_")}
    for variable, name, *_ in VARIABLES:
        value = getattr(settings, name, None)
        if value is None or value == () or value == "":
            continue
        if isinstance(value, bool):
            value = "1" if value else "0"
        elif isinstance(value, tuple):
            value = ",".join(str(v) for v in value)
        env[variable] = str(value)
    return env


def test_a_real_run_due_process_skips_a_job_held_elsewhere_and_exits_0(world):
    qalitel = shutil.which("qalitel", path=str(Path(sys.executable).parent))
    assert qalitel, "the qalitel entry point is installed beside the interpreter"
    env = _environment(world.settings)
    with world.app.app_context():
        other = lease.acquire("job:backups", timedelta(minutes=10), "other-host:1:run-due")
        assert other is not None

    def run_due() -> dict:
        done = subprocess.run([qalitel, "jobs", "run-due", "--json"], env=env,
                              capture_output=True, check=False, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, done.stderr.decode()
        return {j["job"]: j for j in json.loads(done.stdout)["jobs"]}

    first = run_due()
    assert first["backups"]["outcome"] == "skipped"
    assert first["backups"]["reason"] == "running elsewhere"
    assert first["maintenance-expiry"]["outcome"] == "ok"
    assert world.catalogue() == []
    with world.app.app_context():
        other.release()
    second = run_due()
    assert second["backups"]["outcome"] == "ok"
    assert second["maintenance-expiry"]["outcome"] == "not-due"
    assert [b["status"] for b in world.catalogue()] == ["complete"]


def _readme_block(starting: str) -> str:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    [line] = [line.strip() for line in readme.splitlines() if line.strip().startswith(starting)]
    return line


def _quoted(value: str) -> str:
    """``value`` as a double-quoted shell and systemd EnvironmentFile value."""
    for char in ("\\", '"', "$", "`"):
        value = value.replace(char, "\\" + char)
    return f'"{value}"'


def test_the_readme_cron_line_reads_the_systemd_units_environment_file(world, tmp_path):
    """The cron line, run as cron runs it (no QALITEL_* variable, sh), with the unit's
    EnvironmentFile: it runs the jobs on the host's databases; without that file it refuses
    the empty default instance (exit 2) instead of a traceback."""
    qalitel = shutil.which("qalitel", path=str(Path(sys.executable).parent))
    assert qalitel
    unit_file = _readme_block("EnvironmentFile=").partition("=")[2]
    cron = _readme_block("*/5 * * * * ").removeprefix("*/5 * * * * ")
    assert f"set -a; . {unit_file}; set +a;" in cron
    env_file, log, srv = tmp_path / "env", tmp_path / "jobs.log", tmp_path / "srv"
    srv.mkdir()
    variables = {k: v for k, v in _environment(world.settings).items()
                 if k.startswith("QALITEL_")}
    env_file.write_text("".join(f"{k}={_quoted(v)}\n" for k, v in variables.items()))
    command = (cron.replace(unit_file, str(env_file)).replace("/srv/qalitel", str(srv))
               .replace(".venv/bin/qalitel", qalitel).replace("/var/log/qalitel/jobs.log",
                                                               str(log)))
    cron_env = {k: v for k, v in os.environ.items() if not k.startswith("QALITEL_")}
    done = subprocess.run(["sh", "-c", command], env=cron_env, capture_output=True,
                          check=False, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, log.read_text()
    report = {j["job"]: j for j in json.loads(log.read_text())["jobs"]}
    assert report["backups"]["outcome"] == "ok"
    assert [b["status"] for b in world.catalogue()] == ["complete"]

    bare = command.replace(f"set -a; . {env_file}; set +a; ", "")
    log.unlink()
    done = subprocess.run(["sh", "-c", bare], env=cron_env, capture_output=True,
                          check=False, stdin=subprocess.DEVNULL)
    assert done.returncode == 2
    assert "is not initialised: run `qalitel init` there" in log.read_text()
    assert "Traceback" not in log.read_text()
