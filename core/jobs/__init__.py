"""Scheduled jobs: a registry (:func:`register_job`), a lease in the platform database that
works across hosts (:mod:`core.jobs.lease`), a ledger of runs (``job_runs``) and the runner
behind ``qalitel jobs run-due`` (:mod:`core.jobs.runner`)."""

from core.jobs.registry import (
    Job,
    JobContext,
    JobFailed,
    find_job,
    register_job,
    registered_jobs,
    unregister_job,
)

__all__ = ["Job", "JobContext", "JobFailed", "find_job", "register_job", "registered_jobs",
           "unregister_job"]
