"""The registry of scheduled jobs: upper layers register named jobs at import time; the
runner (:mod:`core.jobs.runner`) runs the due ones under their lease."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import Flask

from core.config import Settings
from core.jobs.lease import DEFAULT_TTL, Lease

NAME_RE = re.compile(r"[a-z][a-z0-9-]{1,60}")


class JobFailed(Exception):
    """Raised by a job that did part of its work: recorded as failed, with ``summary``."""

    def __init__(self, message: str, summary: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.summary = dict(summary or {})


@dataclass(frozen=True)
class JobContext:
    """What a running job is handed: its app (an app context is pushed), settings, lease."""

    app: Flask
    settings: Settings
    lease: Lease

    def renew(self) -> bool:
        """Renew the lease now (a heartbeat thread also does it); False if it was lost."""
        return self.lease.renew()


JobFunction = Callable[[JobContext], Mapping[str, Any] | None]


@dataclass(frozen=True)
class Job:
    name: str
    every: timedelta
    run: JobFunction
    description: str = ""
    lease_ttl: timedelta = DEFAULT_TTL
    enabled: Callable[[Settings], bool] | None = None  # False: not on this host (settings)
    waiting: Callable[[], bool] | None = None  # True: work waits, due before its period ends

    def enabled_on(self, settings: Settings) -> bool:
        return self.enabled is None or self.enabled(settings)

    @property
    def slack(self) -> timedelta:
        """How early a run may start: cron's minute does not fall exactly a period later."""
        return min(self.every / 10, timedelta(minutes=1))


_JOBS: dict[str, Job] = {}


def register_job(name: str, every: timedelta, run: JobFunction, *, description: str = "",
                 lease_ttl: timedelta = DEFAULT_TTL,
                 enabled: Callable[[Settings], bool] | None = None,
                 waiting: Callable[[], bool] | None = None) -> Job:
    """Register (or replace) the job ``name``, due every ``every`` — and, with ``waiting``,
    also whenever ``waiting()`` (a cheap query, run in an app context) says work waits for
    it. ``run(context)`` returns a small JSON-able summary, raises :class:`JobFailed` (or
    anything) when it failed."""
    if not NAME_RE.fullmatch(name):
        raise ValueError(f"job name {name!r}: lowercase letters, digits and dashes")
    if every <= timedelta(0):
        raise ValueError(f"job {name}: its period must be positive")
    job = Job(name, every, run, description, lease_ttl, enabled, waiting)
    _JOBS[name] = job
    return job


def unregister_job(name: str) -> None:
    _JOBS.pop(name, None)


def registered_jobs() -> list[Job]:
    """Every job, in the order registered (the order ``run-due`` runs them)."""
    return list(_JOBS.values())


def find_job(name: str) -> Job | None:
    return _JOBS.get(name)
