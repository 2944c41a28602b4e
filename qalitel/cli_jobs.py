"""``qalitel jobs run-due|status|run``: the scheduled jobs (:mod:`qalitel.jobs`).

``run-due`` is what cron or a systemd timer calls every few minutes, on any number of hosts:
each due job runs once, under its lease in the platform database; one held elsewhere is
skipped (exit 0). Exit 1 when a job failed (the others still ran), 2 on bad input or when
the platform database is not initialised (cron without the host's ``QALITEL_*`` variables).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import click
from flask import current_app
from flask.cli import with_appcontext

from qalitel.cli import fail, settings
from tenants.readiness import PlatformGroup

jobs_group = PlatformGroup("jobs", help="Scheduled work: backups, pruning, expiry, sweeps.")


def _when(value: datetime | None, due_now: str = "-") -> str:
    return f"{value:%Y-%m-%d %H:%M:%S}Z" if value else due_now


def _line(result: Any) -> str:
    if result.outcome == "ok":
        return f"{result.job}: ok in {result.duration_seconds:.1f} s"
    if result.outcome == "failed":
        return f"{result.job}: FAILED: {result.error}"
    if result.outcome == "not-due":
        return f"{result.job}: not due until {_when(result.next_due)}"
    return f"{result.job}: {result.outcome} ({result.reason})"


def _report(results: list[Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"jobs": [r.as_dict() for r in results]}, default=str,
                              sort_keys=True))
    else:
        for result in results:
            click.echo(_line(result))
    failed = [r for r in results if r.failed]
    if failed:
        for result in failed:
            click.secho(f"Error: job {result.job} failed: {result.error}", fg="red", err=True)
        raise SystemExit(1)


@jobs_group.command("run-due")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document (for logs).")
@with_appcontext
def run_due_command(as_json: bool) -> None:
    """Run every job that is due, each under its lock (safe on several hosts at once)."""
    from core.jobs.runner import run_due

    _report(run_due(current_app._get_current_object()), as_json)


@jobs_group.command("run")
@click.argument("name")
@click.option("--force", is_flag=True, help="Run it even if it is not due.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@with_appcontext
def run_command(name: str, force: bool, as_json: bool) -> None:
    """Run the job NAME now if it is due (or with --force), under its lock."""
    from core.jobs import find_job, registered_jobs
    from core.jobs.runner import run_job

    job = find_job(name)
    if job is None:
        known = ", ".join(j.name for j in registered_jobs())
        fail(f"no job {name[:60]!r}; the jobs are: {known}", 2)
        return
    _report([run_job(current_app._get_current_object(), job, force=force)], as_json)


@jobs_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the state of every job as JSON.")
@with_appcontext
def status_command(as_json: bool) -> None:
    """Each job: period, last run, duration, outcome, error and when it is next due."""
    from core.jobs.runner import status

    states = status(settings())
    if as_json:
        click.echo(json.dumps({"jobs": [s.as_dict() for s in states]}, default=str,
                              sort_keys=True))
        return
    for s in states:
        last = (f"last {_when(s.last_started_at)} {s.outcome}"
                + (f" in {s.duration_seconds:.1f} s" if s.duration_seconds is not None else "")
                if s.outcome else "never run")
        extra = "" if s.enabled else " (not enabled on this host)"
        if s.failures_in_a_row and s.next_due:
            extra += f" (retry after {s.failures_in_a_row} failure(s) in a row)"
        running = f", running on {s.running_by}" if s.running_by else ""
        click.echo(f"{s.name}: every {_period(s.every_seconds)}, {last}{running}, next due "
                   f"{_when(s.next_due, 'now')}{extra}")
        if s.error:
            click.echo(f"  error: {s.error}")


def _period(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)} {unit}"
    return f"{seconds:g} s"
