"""The jobs framework on a platform database of each backend: two ``run-due`` at once (one
runs each job, the other skips it and exits 0), idempotence, a failing job recorded and
retried, a dead holder's lease expiring, leases renewed, and bad input (exit 2)."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest

from core.clock import ManualClock, set_clock
from core.jobs import JobFailed, lease, register_job, registry
from core.jobs.models import JobRun, Outcome
from core.jobs.runner import ABANDONED, run_due

START = datetime(2030, 3, 1, 2, 0, tzinfo=UTC)
WAIT = 60  # seconds: a safety net against a hang, never an expectation


@pytest.fixture
def jobs(monkeypatch):
    """An empty registry for the test (the host's jobs are tested in test_jobs_host)."""
    monkeypatch.setattr(registry, "_JOBS", {})
    return registry


@pytest.fixture
def app(platform_app, jobs):
    return platform_app


@pytest.fixture
def clock(app) -> ManualClock:
    moved = ManualClock(START)
    set_clock(app, moved)
    return moved


def _cli(app, *args: str):
    return app.test_cli_runner().invoke(args=list(args))


def _run_due(app) -> dict:
    result = _cli(app, "jobs", "run-due", "--json")
    assert result.exit_code in (0, 1), result.output
    return {j["job"]: j for j in json.loads(result.stdout)["jobs"]}


def _ledger(app) -> list[tuple[str, str, str | None]]:
    from core.db import db

    with app.app_context():
        return [(r.job, r.outcome.value, r.error)
                for r in db.session.query(JobRun).order_by(JobRun.id)]


def _counter(name: str, every=timedelta(hours=1), **options):
    calls: list[int] = []

    def run(ctx):
        calls.append(1)
        return {"call": len(calls)}

    register_job(name, every, run, **options)
    return calls


def test_two_run_due_at_once_run_each_job_once_and_the_other_skips(app, jobs):
    started, release = threading.Event(), threading.Event()
    counted = _counter("quick")

    def slow(ctx):
        started.set()
        assert release.wait(WAIT), "the test never released the slow job"
        return {"waited": True}

    register_job("slow", timedelta(hours=1), slow)
    first: list = []

    def run_first():
        with app.app_context():
            first.extend(run_due(app))

    thread = threading.Thread(target=run_first)
    thread.start()
    try:
        assert started.wait(WAIT)
        second = _cli(app, "jobs", "run-due", "--json")
    finally:
        release.set()
        thread.join(WAIT)
    assert second.exit_code == 0, second.output
    report = {j["job"]: j for j in json.loads(second.stdout)["jobs"]}
    assert report["slow"]["outcome"] == "skipped"
    assert report["slow"]["reason"] == "running elsewhere"
    assert report["quick"]["outcome"] == "not-due"  # the first process ran it already
    assert [(r.job, r.outcome) for r in first] == [("quick", "ok"), ("slow", "ok")]
    assert counted == [1]
    assert sorted(_ledger(app)) == [("quick", "ok", None), ("slow", "ok", None),
                                    ("slow", "skipped", None)]
    text = _cli(app, "jobs", "run-due")
    assert text.exit_code == 0 and "slow: not due until" in text.output


def test_run_due_is_idempotent_until_the_period_has_passed(app, clock):
    hourly = _counter("hourly")
    daily = _counter("daily", timedelta(days=1))
    assert {n: j["outcome"] for n, j in _run_due(app).items()} == {"hourly": "ok",
                                                                   "daily": "ok"}
    again = _run_due(app)
    assert {n: j["outcome"] for n, j in again.items()} == {"hourly": "not-due",
                                                           "daily": "not-due"}
    assert again["hourly"]["next_due"].startswith("2030-03-01 03:00:00")
    clock.advance(minutes=50)
    assert _run_due(app)["hourly"]["outcome"] == "not-due"
    clock.advance(minutes=8, seconds=30)  # 58.5 minutes: earlier than the slack allows
    assert _run_due(app)["hourly"]["outcome"] == "not-due"
    clock.advance(minutes=1)  # 59.5 minutes: within the slack (a tenth, at most a minute)
    assert {n: j["outcome"] for n, j in _run_due(app).items()} == {"hourly": "ok",
                                                                   "daily": "not-due"}
    assert (len(hourly), len(daily)) == (2, 1)


def test_waiting_work_makes_a_job_due_before_its_period_but_never_skips_a_back_off(app, clock):
    waiting = []
    runs = _counter("exports-like", timedelta(days=1), waiting=lambda: bool(waiting))
    assert _run_due(app)["exports-like"]["outcome"] == "ok"
    assert _run_due(app)["exports-like"]["outcome"] == "not-due"  # nothing waits
    waiting.append("an export was asked for")
    assert _run_due(app)["exports-like"]["outcome"] == "ok"  # at once, not in a day
    assert len(runs) == 2

    def failing(ctx):
        raise RuntimeError("the disk is full")

    register_job("stuck", timedelta(days=1), failing, waiting=lambda: True)
    assert _run_due(app)["stuck"]["outcome"] == "failed"
    assert _run_due(app)["stuck"]["outcome"] == "not-due"  # its back-off holds
    clock.advance(minutes=5)
    assert _run_due(app)["stuck"]["outcome"] == "failed"


def test_a_failing_job_is_recorded_with_its_error_and_retried_next_time(app, clock):
    fine = _counter("fine")
    attempts: list[int] = []

    def flaky(ctx):
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("the disk is on fire")
        return {"attempt": len(attempts)}

    def partial(ctx):
        raise JobFailed("tenant beta: no space left", {"done": ["alpha"]})

    register_job("flaky", timedelta(days=1), flaky)
    register_job("partial", timedelta(days=1), partial)
    result = _cli(app, "jobs", "run-due", "--json")
    assert result.exit_code == 1
    assert "job flaky failed: RuntimeError: the disk is on fire" in result.stderr
    report = {j["job"]: j for j in json.loads(result.stdout)["jobs"]}
    assert report["fine"]["outcome"] == "ok"  # the failure stopped no other job
    assert report["flaky"]["error"] == "RuntimeError: the disk is on fire"
    assert report["partial"]["summary"] == {"done": ["alpha"]}
    status = json.loads(_cli(app, "jobs", "status", "--json").stdout)
    state = {s["name"]: s for s in status["jobs"]}
    assert state["flaky"]["outcome"] == "failed"
    assert state["flaky"]["next_due"].startswith("2030-03-01 02:05:00")  # 5 minutes' back-off
    assert "the disk is on fire" in state["flaky"]["error"]
    assert state["fine"]["outcome"] == "ok" and state["fine"]["duration_seconds"] >= 0

    clock.advance(minutes=5)
    retried = _run_due(app)
    assert retried["flaky"]["outcome"] == "ok" and retried["fine"]["outcome"] == "not-due"
    assert retried["partial"]["outcome"] == "failed"
    assert (len(fine), len(attempts)) == (1, 2)
    text = _cli(app, "jobs", "status")
    assert text.exit_code == 0
    assert "flaky: every 1 d, last 2030-03-01 02:05:00Z ok" in text.output
    assert "  error: tenant beta: no space left" in text.output


def test_a_lease_left_by_a_dead_holder_expires(app, clock):
    from core.db import db

    calls = _counter("work", lease_ttl=timedelta(minutes=10))
    with app.app_context():
        assert lease.acquire("job:work", timedelta(minutes=10), "gone-host:4242:dead")
        db.session.add(JobRun(job="work", holder="gone-host:4242:dead", started_at=START,
                              outcome=Outcome.RUNNING))
        db.session.commit()
    held = _cli(app, "jobs", "run-due")
    assert held.exit_code == 0 and "work: skipped (running elsewhere)" in held.output
    status = {s["name"]: s for s in json.loads(_cli(app, "jobs", "status", "--json")
                                                .stdout)["jobs"]}
    assert status["work"]["running_by"] == "gone-host:4242:dead"
    clock.advance(minutes=9, seconds=59)
    assert _run_due(app)["work"]["outcome"] == "skipped"
    clock.advance(seconds=2)  # the lease was never renewed: it has expired
    assert _run_due(app)["work"]["outcome"] == "ok"
    assert calls == [1]
    assert _ledger(app) == [("work", "failed", ABANDONED), ("work", "skipped", None),
                            ("work", "skipped", None), ("work", "ok", None)]
    with app.app_context():
        assert lease.acquire("job:work") is not None  # released at the end of the run


def test_a_renewed_lease_outlives_its_first_expiry(app, clock):
    seen: list = []

    def long(ctx):
        for _ in range(3):
            clock.advance(minutes=8)  # 24 minutes in all, with a 10-minute lease
            assert ctx.renew()
            seen.append(lease.acquire("job:long", holder="other:1:x"))
        return None

    register_job("long", timedelta(days=1), long, lease_ttl=timedelta(minutes=10))
    assert _run_due(app)["long"]["outcome"] == "ok"
    assert seen == [None, None, None]
    with app.app_context():
        taken = lease.acquire("job:long", holder="other:1:x")
        assert taken is not None
        mine = lease.Lease("job:long", "not-the-holder", timedelta(minutes=1))
        assert not mine.renew() and mine.lost
        mine.release()  # releases nothing of another holder's
        assert lease.acquire("job:long") is None
        with lease.held("job:long") as nothing:
            assert nothing is None
        taken.release()
        with lease.held("job:long") as mine_now:
            assert mine_now is not None and lease.acquire("job:long") is None
        assert lease.acquire("job:long") is not None


def test_run_one_job_if_due_or_forced(app, clock):
    calls = _counter("once", timedelta(days=1))
    assert _cli(app, "jobs", "run", "once").exit_code == 0
    not_due = _cli(app, "jobs", "run", "once")
    assert not_due.exit_code == 0 and "once: not due until 2030-03-02 02:00:00Z" in \
        not_due.output
    forced = _cli(app, "jobs", "run", "once", "--force", "--json")
    assert forced.exit_code == 0 and json.loads(forced.stdout)["jobs"][0]["outcome"] == "ok"
    assert calls == [1, 1]


def test_a_job_not_enabled_on_this_host_is_left_alone(app):
    calls = _counter("elsewhere", enabled=lambda settings: False)
    assert _run_due(app)["elsewhere"]["outcome"] == "disabled"
    assert calls == [] and _ledger(app) == []
    text = _cli(app, "jobs", "status")
    assert "elsewhere: every 1 h, never run, next due now (not enabled on this host)" in \
        text.output


@pytest.mark.parametrize("args, message", [
    (("jobs", "run", "no-such-job"), "no job 'no-such-job'; the jobs are: known"),
    (("jobs", "run"), "Missing argument 'NAME'"),
    (("jobs", "run-due", "--bogus"), "No such option '--bogus'"),
    (("jobs", "status", "extra"), "Got unexpected extra argument"),
    (("jobs", "explode"), "No such command 'explode'"),
])
def test_bad_input_exits_2_with_a_clear_message(app, args, message):
    _counter("known")
    result = _cli(app, *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert _ledger(app) == []


def test_register_job_refuses_bad_names_and_periods(jobs):
    with pytest.raises(ValueError, match="lowercase letters"):
        register_job("Bad Name", timedelta(hours=1), lambda ctx: None)
    with pytest.raises(ValueError, match="positive"):
        register_job("zero", timedelta(0), lambda ctx: None)


def test_the_staff_console_shows_each_jobs_last_run_and_highlights_failures(app, clock):
    from tests.conftest import make_staff, staff_login

    _counter("tidy", timedelta(minutes=5))

    def broken(ctx):
        raise RuntimeError("target /srv/b is read-only")

    register_job("broken", timedelta(days=1), broken)
    register_job("later", timedelta(hours=6), lambda ctx: None)
    with app.app_context():
        run_due(app, [registry.find_job("tidy"), registry.find_job("broken")])
    eve = make_staff(app)
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    assert staff_login(client, app, eve).status_code == 302
    page = client.get("/staff/").get_data(as_text=True)
    assert "Scheduled jobs" in page
    tidy = page[page.index('<tr class="job-ok">'):]
    assert "<code>tidy</code>" in tidy[:tidy.index("</tr>")]
    assert "5 min" in tidy and "2030-03-01 02:00 UTC" in tidy and "succeeded" in tidy
    failed = page[page.index('<tr class="job-failed">'):]
    failed = failed[:failed.index("</tr>")]
    assert "<code>broken</code>" in failed and "1 d" in failed
    assert '<span class="badge danger">failed</span>' in failed
    assert "RuntimeError: target /srv/b is read-only" in failed
    assert "2030-03-01 02:05 UTC" in failed  # a failed job is retried after 5 minutes
    never = page[page.index('<tr class="job-never">'):]
    assert "<code>later</code>" in never and "6 h" in never and "never" in never

    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "fr"
    french = client.get("/staff/").get_data(as_text=True)
    assert "Tâches planifiées" in french and "échouée" in french and "1 j" in french


def test_a_lease_of_a_process_gone_from_this_host_is_taken_over_at_once(app):
    import os
    import socket
    import subprocess

    finished = subprocess.Popen(["true"])
    finished.wait()
    host = socket.gethostname()
    with app.app_context():
        assert lease.acquire("job:a", holder=f"{host}:{finished.pid}:dead")
        assert lease.acquire("job:b", holder=f"{host}:{os.getpid()}:alive")
        assert lease.acquire("job:c", holder=f"elsewhere:{finished.pid}:unknown")
        taken = lease.acquire("job:a")
        assert taken is not None and taken.holder != f"{host}:{finished.pid}:dead"
        assert lease.acquire("job:b") is None  # its process still runs (this one)
        assert lease.acquire("job:c") is None  # another host's: only expiry frees it


def test_the_heartbeat_renews_the_lease_while_the_work_runs(app, clock):
    from core.db import db
    from core.jobs.models import JobLock

    ttl = timedelta(minutes=10)
    with app.app_context():
        mine = lease.acquire("job:beat", ttl)
        assert mine is not None
        clock.advance(minutes=7)
        renewed = START + timedelta(minutes=7) + ttl
        with lease.Heartbeat(app, mine, interval=0.01):
            for _ in range(3000):  # until the thread has renewed it (a hang fails, not time)
                db.session.remove()
                row = db.session.get(JobLock, "job:beat")
                if row.expires_at.replace(tzinfo=UTC) == renewed:
                    break
                threading.Event().wait(0.01)
            else:
                pytest.fail("the heartbeat never renewed the lease")
        clock.advance(minutes=9)  # past the first expiry, within the renewed one
        assert lease.acquire("job:beat") is None


def test_leases_use_connections_of_their_own_never_the_apps_pool(app, clock):
    """With every connection of the app's platform pool taken (long work holding them), a
    lease is still taken, renewed by its heartbeat and released; none comes from the pool."""
    from sqlalchemy import event, select

    from core.db import db
    from core.jobs.models import JobLock

    with app.app_context():
        pool = db.engine.pool
        held = [db.engine.connect() for _ in range(pool.size() + pool._max_overflow)]
        checkouts: list[int] = []

        def counted(*_args) -> None:
            checkouts.append(1)

        event.listen(pool, "checkout", counted)
        try:
            mine = lease.acquire("job:starved", timedelta(minutes=10))
            assert mine is not None
            clock.advance(minutes=7)
            with lease.Heartbeat(app, mine, interval=0.01):
                for _ in range(3000):  # until the thread has renewed it (a hang fails)
                    row = held[0].execute(
                        select(JobLock.expires_at).where(JobLock.name == "job:starved"))
                    held[0].rollback()
                    if row.scalar().replace(tzinfo=UTC) == START + timedelta(minutes=17):
                        break
                    threading.Event().wait(0.01)
                else:
                    pytest.fail("the heartbeat never renewed the lease")
            mine.release()
            assert lease.acquire("job:starved") is not None
        finally:
            event.remove(pool, "checkout", counted)
            for conn in held:
                conn.close()
        assert checkouts == []


def test_the_ledger_forgets_runs_older_than_asked(app, clock):
    from core.db import db
    from core.jobs.runner import prune_ledger

    _counter("kept")
    _run_due(app)
    clock.advance(days=91)
    _run_due(app)
    with app.app_context():
        assert prune_ledger(timedelta(days=90)) == 1
        db.session.commit()
    assert _ledger(app) == [("kept", "ok", None)]


def test_a_job_that_exits_is_recorded_as_failed_and_its_lease_released(app):
    def exits(ctx):
        raise SystemExit(2)

    register_job("exits", timedelta(hours=1), exits)
    result = _cli(app, "jobs", "run-due", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["jobs"][0]["error"] == "SystemExit: 2"
    assert _ledger(app) == [("exits", "failed", "SystemExit: 2")]
    with app.app_context():
        assert lease.acquire("job:exits") is not None
