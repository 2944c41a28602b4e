"""Running jobs: each due job under its lease (``job:<name>``), one ledger row per attempt.

A job is due when its newest successful run started at least its period ago (less
:attr:`~core.jobs.registry.Job.slack`), or, when its newest attempt failed, once the back-off
after that failure has passed (:func:`backoff`: 5 minutes after the first failure in a row,
then 10, 20…, never more than its period). Due-ness is checked again
once the lease is held, so a job another host has just finished is not run twice. A job whose
lease another process holds is *skipped* (``running elsewhere``), which is no failure.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import Flask
from sqlalchemy import delete, func, select, update

from core import clock, config
from core.db import db
from core.jobs.lease import Heartbeat, Lease, acquire, holder_id
from core.jobs.models import JobLock, JobRun, Outcome
from core.jobs.registry import Job, JobContext, JobFailed, registered_jobs
from core.platform_transaction import unit_of_work

log = logging.getLogger(__name__)

ERROR_MAX = 2000
SUMMARY_MAX = 4000
NOT_DUE = "not-due"
DISABLED = "disabled"
ELSEWHERE = "running elsewhere"
ABANDONED = "abandoned: its process stopped before finishing (its lease expired)"
FIRST_RETRY = timedelta(minutes=5)
"""How long after a failure a job is retried; doubled after each further failure in a row."""


def lock_name(job: Job) -> str:
    return f"job:{job.name}"



@dataclass
class RunResult:
    """What one job did in one call: ok, failed, skipped, not-due or disabled."""

    job: str
    outcome: str
    reason: str | None = None
    run_id: int | None = None
    started_at: datetime | None = None
    duration_seconds: float | None = None
    error: str | None = None
    summary: dict[str, Any] | None = None
    next_due: datetime | None = None

    @property
    def failed(self) -> bool:
        return self.outcome == Outcome.FAILED.value

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _newest(job: Job, outcomes: tuple[Outcome, ...]) -> JobRun | None:
    return db.session.execute(
        select(JobRun).where(JobRun.job == job.name, JobRun.outcome.in_(outcomes))
        .order_by(JobRun.started_at.desc(), JobRun.id.desc()).limit(1)).scalar_one_or_none()


def backoff(job: Job, failures: int) -> timedelta:
    """The wait before retrying ``job`` after ``failures`` (>= 1) failed attempts in a row:
    :data:`FIRST_RETRY`, doubled each time, capped at the job's period."""
    doublings = min(failures - 1, 20)  # 5 min * 2**20 is years: far past any period
    return min(FIRST_RETRY * 2 ** doublings, job.every)


def failures_in_a_row(job: Job) -> int:
    """How many attempts of ``job`` failed since its newest successful run."""
    last_ok = _newest(job, (Outcome.OK,))
    query = select(func.count()).select_from(JobRun).where(
        JobRun.job == job.name, JobRun.outcome == Outcome.FAILED)
    if last_ok is not None:
        query = query.where(JobRun.started_at >= last_ok.started_at, JobRun.id != last_ok.id)
    return db.session.execute(query).scalar() or 0


def next_due(job: Job) -> datetime | None:
    """When ``job`` is next due; None when it is due now (never run). After a failure, when
    its back-off ends, counted from the end of the failed attempt."""
    last = _newest(job, (Outcome.OK, Outcome.FAILED))
    if last is None:
        return None
    if last.outcome is Outcome.FAILED:
        ended = clock.as_utc(last.finished_at or last.started_at)
        return ended + backoff(job, max(1, failures_in_a_row(job)))  # type: ignore[operator]
    return clock.as_utc(last.started_at) + job.every  # type: ignore[operator]


def is_due(job: Job) -> bool:
    """Its period is over (or its back-off, after a failure), or work waits for it
    (``Job.waiting``) and its last run succeeded."""
    due = next_due(job)
    if due is None or clock.now() >= due - job.slack:
        return True
    if job.waiting is None:
        return False
    last = _newest(job, (Outcome.OK, Outcome.FAILED))
    return last is not None and last.outcome is Outcome.OK and bool(job.waiting())


def _small(summary: Any) -> dict[str, Any] | None:
    if summary is None:
        return None
    text = json.dumps(dict(summary), default=str, sort_keys=True)
    if len(text) > SUMMARY_MAX:
        return {"truncated": True, "characters": len(text)}
    return json.loads(text)


def _short(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(exc)).strip()[:ERROR_MAX]


def _holder_of(name: str) -> str | None:
    return db.session.execute(select(JobLock.holder).where(JobLock.name == name)).scalar()


def _skipped(job: Job, holder: str) -> RunResult:
    other = _holder_of(lock_name(job))
    now = clock.now()
    row = JobRun(job=job.name, holder=holder, started_at=now, finished_at=now,
                 duration_seconds=0.0, outcome=Outcome.SKIPPED,
                 summary={"reason": ELSEWHERE, "held_by": other})
    with unit_of_work():
        db.session.add(row)
    return RunResult(job.name, Outcome.SKIPPED.value, ELSEWHERE, row.id, now,
                     summary=row.summary)


def _abandon_stale(job: Job) -> None:
    """Runs left ``running`` by a holder that died: we hold the lease, so none is alive."""
    db.session.execute(update(JobRun).where(JobRun.job == job.name,
                                            JobRun.outcome == Outcome.RUNNING)
                       .values(outcome=Outcome.FAILED, error=ABANDONED,
                               finished_at=clock.now())
                       .execution_options(synchronize_session=False))


def _attempt(app: Flask, job: Job, lease: Lease) -> RunResult:
    started = clock.now()
    with unit_of_work():
        _abandon_stale(job)
        row = JobRun(job=job.name, holder=lease.holder, started_at=started,
                     outcome=Outcome.RUNNING)
        db.session.add(row)
    run_id = row.id
    outcome, error, summary = Outcome.OK, None, None
    began = time.monotonic()
    try:
        with Heartbeat(app, lease), unit_of_work():
            summary = job.run(JobContext(app, app.extensions[config.EXTENSION], lease))
    except JobFailed as exc:
        outcome, error, summary = Outcome.FAILED, str(exc)[:ERROR_MAX], exc.summary
    except (Exception, SystemExit) as exc:  # a command's helper may exit: still a failure
        log.exception("job %s failed", job.name)
        outcome, error = Outcome.FAILED, _short(exc)
    duration = round(time.monotonic() - began, 3)
    if lease.lost:
        error = ((error + "; ") if error else "") + "its lease was taken over meanwhile"
    db.session.remove()  # the job may have left anything in the session
    with unit_of_work():
        row = db.session.get(JobRun, run_id)
        assert row is not None
        row.outcome, row.error, row.summary = outcome, error, _small(summary)
        row.finished_at, row.duration_seconds = clock.now(), duration
    return RunResult(job.name, outcome.value, None, run_id, started, duration, error,
                     row.summary, next_due(job))


def run_job(app: Flask, job: Job, *, force: bool = False) -> RunResult:
    """Run ``job`` if due (or ``force``) and its lease is free; inside an app context."""
    settings = app.extensions[config.EXTENSION]
    if not job.enabled_on(settings):
        return RunResult(job.name, DISABLED, "not enabled on this host")
    if not force and not is_due(job):
        return RunResult(job.name, NOT_DUE, next_due=next_due(job))
    db.session.commit()  # hold no platform transaction while taking the lease
    holder = holder_id()
    lease = acquire(lock_name(job), job.lease_ttl, holder)
    if lease is None:
        return _skipped(job, holder)
    try:
        if not force and not is_due(job):  # another host finished it meanwhile
            return RunResult(job.name, NOT_DUE, next_due=next_due(job))
        return _attempt(app, job, lease)
    finally:
        try:
            lease.release()
        except Exception:  # it expires on its own
            log.exception("releasing lease %s failed", lease.name)


def prune_ledger(keep: timedelta) -> int:
    """Delete ledger rows of runs that started more than ``keep`` ago; how many went."""
    return db.session.execute(delete(JobRun).where(
        JobRun.started_at < clock.now() - keep, JobRun.outcome != Outcome.RUNNING)
        .execution_options(synchronize_session=False)).rowcount


def run_due(app: Flask, jobs: list[Job] | None = None) -> list[RunResult]:
    """Every due job, one after the other, in registration order; a failure stops none."""
    return [run_job(app, job) for job in (registered_jobs() if jobs is None else jobs)]


@dataclass
class JobState:
    """What ``jobs status`` and the staff console show of one job."""

    name: str
    every_seconds: float
    description: str
    enabled: bool
    last_started_at: datetime | None
    last_finished_at: datetime | None
    duration_seconds: float | None
    outcome: str | None
    error: str | None
    summary: dict[str, Any] | None
    next_due: datetime | None  # None: due now
    running_by: str | None  # the holder of a live lease
    failures_in_a_row: int = 0  # failed attempts since the last success (the back-off's)

    @property
    def failed(self) -> bool:
        return self.outcome == Outcome.FAILED.value

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def status(settings: config.Settings) -> list[JobState]:
    states = []
    now = clock.now()
    for job in registered_jobs():
        last = _newest(job, (Outcome.OK, Outcome.FAILED, Outcome.RUNNING))
        lock = db.session.get(JobLock, lock_name(job))
        live = lock is not None and clock.as_utc(lock.expires_at) > now  # type: ignore[operator]
        states.append(JobState(
            job.name, job.every.total_seconds(), job.description, job.enabled_on(settings),
            clock.as_utc(last.started_at) if last else None,
            clock.as_utc(last.finished_at) if last else None,
            last.duration_seconds if last else None,
            last.outcome.value if last else None, last.error if last else None,
            last.summary if last else None, next_due(job),
            lock.holder if live and lock is not None else None,
            failures_in_a_row(job) if last and last.outcome is Outcome.FAILED else 0))
    return states
