"""On a platform database of each backend: a failing job is retried after 5 minutes, then 10,
20… capped at its period, shown by ``jobs status``; a success resets that. ``jobs`` and
``backup`` commands refuse a platform database nobody initialised or migrated (exit 2, a
clear message, no traceback), as cron without the host's variables would give them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from core.clock import ManualClock, set_clock
from core.jobs import register_job, registry

START = datetime(2030, 3, 1, 2, 0, tzinfo=UTC)


@pytest.fixture
def jobs(monkeypatch):
    monkeypatch.setattr(registry, "_JOBS", {})
    return registry


@pytest.fixture
def app(platform_app, jobs):
    return platform_app


def _cli(app, *args: str):
    return app.test_cli_runner().invoke(args=list(args))


def _outcome(app, name: str) -> str:
    result = _cli(app, "jobs", "run-due", "--json")
    assert result.exit_code in (0, 1), result.output
    return {j["job"]: j for j in json.loads(result.stdout)["jobs"]}[name]["outcome"]


def _state(app, name: str) -> dict:
    result = _cli(app, "jobs", "status", "--json")
    assert result.exit_code == 0, result.output
    return {s["name"]: s for s in json.loads(result.stdout)["jobs"]}[name]


def test_a_failing_job_backs_off_5_10_20_minutes_capped_at_its_period(app):
    clock = ManualClock(START)
    set_clock(app, clock)
    broken = [True]
    calls: list[datetime] = []

    def flaky(ctx):
        calls.append(clock())
        if broken[0]:
            raise RuntimeError("medium b is not mounted")
        return {}

    register_job("flaky", timedelta(hours=1), flaky)
    assert _outcome(app, "flaky") == "failed"
    waits = []
    for _ in range(6):
        state = _state(app, "flaky")
        due = datetime.fromisoformat(state["next_due"])
        wait = due - clock()
        waits.append(wait)
        clock.advance(seconds=wait.total_seconds() - 120)  # two minutes early: not yet
        assert _outcome(app, "flaky") == "not-due"
        clock.set(due)
        assert _outcome(app, "flaky") == "failed"
    minutes = [w.total_seconds() / 60 for w in waits]
    assert minutes == [5, 10, 20, 40, 60, 60]  # capped at the job's period (1 h)
    assert len(calls) == 7
    text = _cli(app, "jobs", "status")
    due = START + timedelta(minutes=5 + 10 + 20 + 40 + 60 + 60 + 60)
    assert f"flaky: every 1 h, last {clock():%Y-%m-%d %H:%M:%S}Z failed" in text.output
    assert (f"next due {due:%Y-%m-%d %H:%M:%S}Z (retry after 7 failure(s) in a row)"
            in text.output)
    assert _state(app, "flaky")["failures_in_a_row"] == 7

    broken[0] = False
    clock.set(due)
    assert _outcome(app, "flaky") == "ok"
    state = _state(app, "flaky")
    assert state["failures_in_a_row"] == 0
    assert state["next_due"].startswith(f"{due + timedelta(hours=1):%Y-%m-%d %H:%M:%S}")
    broken[0] = True
    clock.set(due + timedelta(hours=1))
    assert _outcome(app, "flaky") == "failed"  # a new series starts at 5 minutes again
    assert datetime.fromisoformat(_state(app, "flaky")["next_due"]) == \
        clock() + timedelta(minutes=5)


def test_a_job_period_shorter_than_the_first_retry_is_retried_at_its_period(app):
    clock = ManualClock(START)
    set_clock(app, clock)

    def broken(ctx):
        raise RuntimeError("no")

    register_job("minutely", timedelta(minutes=1), broken)
    assert _outcome(app, "minutely") == "failed"
    assert datetime.fromisoformat(_state(app, "minutely")["next_due"]) == \
        START + timedelta(minutes=1)
    clock.advance(minutes=1)
    assert _outcome(app, "minutely") == "failed"


def test_a_forced_run_ignores_the_back_off(app):
    clock = ManualClock(START)
    set_clock(app, clock)
    calls: list[int] = []

    def broken(ctx):
        calls.append(1)
        raise RuntimeError("no")

    register_job("daily", timedelta(days=1), broken)
    assert _cli(app, "jobs", "run", "daily").exit_code == 1
    not_due = _cli(app, "jobs", "run", "daily")
    assert not_due.exit_code == 0 and "daily: not due until 2030-03-01 02:05:00Z" in \
        not_due.output
    assert _cli(app, "jobs", "run", "daily", "--force").exit_code == 1
    assert len(calls) == 2
    assert _state(app, "daily")["failures_in_a_row"] == 2


def _bare_app(tmp_path, backend: str, platform_database: str | None):
    """An app on a platform database nobody initialised (what cron without the host's
    variables opens: an empty ``./instance``)."""
    from qalitel import create_app
    from tests.fixtures.apps import settings_for

    overrides = {"database_url": platform_database} if platform_database else {}
    app = create_app(settings_for(tmp_path / "bare", backend, **overrides))
    app.config["TESTING"] = True
    return app


COMMANDS = [("jobs", "run-due", "--json"), ("jobs", "status"), ("jobs", "run", "backups"),
            ("backup", "status", "--json"), ("backup", "run", "--all"),
            ("backup", "list", "acme"), ("backup", "prune"), ("backup", "verify"),
            ("backup", "sweep"), ("backup", "restore", "acme", "1"),
            ("backup", "retire-target", "/media/old")]


def test_commands_refuse_an_uninitialised_platform_database(tmp_path, backend,
                                                            platform_database):
    from core.db import db

    app = _bare_app(tmp_path, backend, platform_database)
    try:
        for args in COMMANDS:
            result = app.test_cli_runner().invoke(args=list(args))
            assert result.exit_code == 2, (args, result.output)
            assert "is not initialised: run `qalitel init` there, or give this command the " \
                   "host's QALITEL_* variables" in result.stderr, (args, result.output)
            assert isinstance(result.exception, SystemExit)  # no traceback
        helped = app.test_cli_runner().invoke(args=["jobs", "run-due", "--help"])
        assert helped.exit_code == 0 and "Run every job that is due" in helped.output
        with app.app_context():
            from sqlalchemy import inspect

            assert "job_runs" not in inspect(db.engine).get_table_names()  # nothing made
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def test_commands_refuse_a_platform_database_behind_this_codes_schema(platform_app):
    from sqlalchemy import text

    from core.db import db
    from tenants.migrations import head

    with platform_app.app_context():
        db.session.execute(text("UPDATE alembic_version SET version_num = 'p0001'"))
        db.session.commit()
    for args in (("jobs", "run-due"), ("backup", "status")):
        result = platform_app.test_cli_runner().invoke(args=list(args))
        assert result.exit_code == 2, result.output
        assert f"is at schema revision p0001, this code needs {head('platform')}: run " \
               "`qalitel init`" in result.stderr
    with platform_app.app_context():
        db.session.execute(text("UPDATE alembic_version SET version_num = :v"),
                           {"v": head("platform")})
        db.session.commit()
    assert platform_app.test_cli_runner().invoke(args=["jobs", "status"]).exit_code == 0


def test_commands_refuse_a_platform_database_they_cannot_open(tmp_path, backend):
    from core.db import db
    from tests.fixtures.pg import PG_PREFIX, PG_URL

    if backend == "postgresql":
        from tenants import pg

        url = pg.libpq_dsn(PG_URL, f"{PG_PREFIX}no_such_platform")
    else:
        url = f"sqlite:///{tmp_path}/no/such/folder/platform.sqlite3"
    app = _bare_app(tmp_path, backend, url)
    try:
        for args in (("jobs", "run-due"), ("backup", "status")):
            result = app.test_cli_runner().invoke(args=list(args))
            assert result.exit_code == 2, result.output
            assert "Error: cannot open the platform database" in result.stderr
            assert isinstance(result.exception, SystemExit)
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
