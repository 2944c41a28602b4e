"""Migrating every tenant database: the templates first, then the tenants in parallel.

* Templates: the SQLite template file is named by the head revision (building it is the
  migration); each PostgreSQL server's template database is upgraded as the NOLOGIN template
  owner under the exclusive advisory lock provisioning takes in shared mode
  (``tenants.provisioning``).
* Tenants whose registry revision is already the head are skipped without starting Alembic
  or opening their database.
* Each pending tenant is upgraded in one transaction, connected as the tenant's own role (so
  what the upgrade creates stays owned by it). Alembic's ``context``/``op`` proxies are
  process-global, so parallel upgrades run in worker processes (forkserver: nothing inherited
  from the caller, no open connection or engine), at most the connection budget at once.
* The ledger gets a ``running`` row per pending tenant before any work starts, completed
  with revisions, state, error and duration as each outcome arrives (a crash leaves
  ``running`` rows, which ``retry_failed`` picks up like failures). A failure never stops the
  others; the caller gets every failure in the report.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import sys
import time
import traceback
import types
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import selectinload

from core.config import Settings
from core.db import db
from tenants import hooks, migrations
from tenants.engines import TenantInfo, build_engine, sqlite_path
from tenants.pg import lock_key
from tenants.registry import (
    LIVE_STATUSES,
    Backend,
    DatabaseServer,
    MigrationLedger,
    MigrationState,
    Tenant,
    validate_slug,
)
from tenants.templates import ensure_sqlite_template, migrate_pg_template, sqlite_template_path

# How long one tenant's upgrade waits for a lock held by the application before failing
# (that tenant only; the others go on and --retry-failed picks it up later).
PG_LOCK_TIMEOUT = "30s"
ERROR_MAX = 4000


@dataclass
class Outcome:
    slug: str
    from_revision: str | None
    to_revision: str | None
    error: str | None
    duration_ms: float

    @property
    def summary(self) -> str:
        """The first line of the error, short enough for a terminal."""
        first = (self.error or "").strip().splitlines()
        return first[0][:300] if first else ""


@dataclass
class MigrationReport:
    run_id: str
    head: str
    migrated: list[Outcome] = field(default_factory=list)
    failed: list[Outcome] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    templates: list[str] = field(default_factory=list)
    workers: int = 0
    duration_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed


def _describe(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(exc)).strip()[:ERROR_MAX]


def migration_engine(info: TenantInfo, settings: Settings) -> Engine:
    """An unpooled engine on one tenant database, as the tenant's own role, fit for DDL.

    A missing SQLite file is an error here: opening it would create an empty database.
    """
    if info.backend is Backend.SQLITE:
        path = sqlite_path(settings, info.database_name)
        if not path.is_file():
            raise FileNotFoundError(f"database file {path.name} of tenant {info.slug} is missing")
    return migrations.prepare_engine(build_engine(info, settings, pooled=False))


def migrate_one(info: TenantInfo, settings: Settings, target: str = "head") -> Outcome:
    """Upgrade one tenant database in one transaction, connected as the tenant's own role.

    On PostgreSQL a transaction-level advisory lock keyed by the tenant serialises concurrent
    runs (the second one finds the database at head and does nothing); SQLite's
    ``BEGIN IMMEDIATE`` does the same.
    """
    started = time.perf_counter()
    before: str | None = info.schema_revision
    try:
        engine = migration_engine(info, settings)
        try:
            with engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    conn.execute(select(func.set_config("lock_timeout", PG_LOCK_TIMEOUT, True)))
                    conn.execute(select(func.pg_advisory_xact_lock(
                        lock_key(f"migrate:{info.uid}"))))
                before = migrations.current_revision(conn)
                after = migrations.upgrade(conn, "tenant", target)
        finally:
            engine.dispose()
        return Outcome(info.slug, before, after, None, (time.perf_counter() - started) * 1000)
    except Exception as exc:
        return Outcome(info.slug, before, None, _describe(exc),
                       (time.perf_counter() - started) * 1000)


def _migrate_in_worker(info: TenantInfo, settings: Settings, lineage: hooks.Lineage) -> Outcome:
    """A worker process knows nothing of the caller's registrations: the lineage comes along."""
    hooks.register_lineage(lineage)
    return migrate_one(info, settings)


def _select(slugs: list[str] | None, retry_failed: bool) -> list[Tenant]:
    query = (select(Tenant)
             .where(Tenant.status.in_(LIVE_STATUSES))
             .options(selectinload(Tenant.server))
             .order_by(Tenant.slug))
    if slugs:
        for slug in slugs:
            validate_slug(slug)
        tenants = list(db.session.execute(query.where(Tenant.slug.in_(slugs))).scalars())
        missing = sorted(set(slugs) - {t.slug for t in tenants})
        if missing:
            raise LookupError(f"no active or suspended tenant named {', '.join(missing)}")
    else:
        tenants = list(db.session.execute(query).scalars())
    if retry_failed:
        failed = set(_last_failed_tenant_ids())
        tenants = [t for t in tenants if t.id in failed]
    return tenants


def _last_failed_tenant_ids() -> list[int]:
    """Tenants whose latest ledger row is not ``ok`` (failed, or left ``running`` by a crash)."""
    latest = (select(func.max(MigrationLedger.id))
              .where(MigrationLedger.tenant_id.is_not(None))
              .group_by(MigrationLedger.tenant_id))
    rows = db.session.execute(
        select(MigrationLedger.tenant_id)
        .where(MigrationLedger.id.in_(latest), MigrationLedger.state != MigrationState.OK))
    return [tenant_id for (tenant_id,) in rows]


def _finish(row: MigrationLedger, outcome: Outcome) -> None:
    finished = datetime.now(UTC)
    row.from_revision = outcome.from_revision
    row.to_revision = outcome.to_revision
    row.state = MigrationState.FAILED if outcome.error else MigrationState.OK
    row.error = outcome.error
    row.duration_ms = outcome.duration_ms
    row.started_at = finished - timedelta(milliseconds=outcome.duration_ms)
    row.finished_at = finished


def _template_outcome(report: MigrationReport, name: str, before: str | None,
                      after: str | None, error: str | None, started: float) -> None:
    outcome = Outcome(f"template:{name}", before, after, error,
                      (time.perf_counter() - started) * 1000)
    if before != after or error:
        row = MigrationLedger(run_id=report.run_id, target=outcome.slug, tenant_id=None,
                              state=MigrationState.RUNNING)
        _finish(row, outcome)
        db.session.add(row)
    if error:
        report.failed.append(outcome)
    else:
        report.templates.append(name)


def migrate_templates(settings: Settings, report: MigrationReport) -> None:
    """Bring the SQLite template and every server's PostgreSQL template to head."""
    started = time.perf_counter()
    existed = sqlite_template_path(settings).exists()
    try:
        ensure_sqlite_template(settings)
        _template_outcome(report, "sqlite", report.head if existed else None, report.head,
                          None, started)
    except Exception as exc:
        _template_outcome(report, "sqlite", None, None, _describe(exc), started)
    for server in db.session.execute(select(DatabaseServer).order_by(DatabaseServer.id)).scalars():
        started = time.perf_counter()
        before = server.template_revision
        try:
            after, error = migrate_pg_template(settings, server), None
        except Exception as exc:
            db.session.rollback()
            after, error = None, _describe(exc)
        _template_outcome(report, server.name, before, after, error, started)
    db.session.commit()


def migrate_tenants(settings: Settings, slugs: list[str] | None = None, *,
                    jobs: int | None = None, retry_failed: bool = False) -> MigrationReport:
    """Migrate the templates, then the selected (default: all) tenants to head.

    Raises InvalidSlugError or LookupError for a bad or unknown slug, before any work.
    """
    started = time.perf_counter()
    head = migrations.head("tenant")
    report = MigrationReport(run_id=str(uuid.uuid4()), head=head)
    # Snapshots taken now: the commits below expire ORM rows (one query each to reload).
    selected = [TenantInfo.from_row(t) for t in _select(slugs, retry_failed)]
    migrate_templates(settings, report)
    pending = [info for info in selected if info.schema_revision != head]
    report.skipped = [info.slug for info in selected if info.schema_revision == head]
    if pending:
        by_slug = {info.slug: info for info in pending}
        rows = {info.slug: MigrationLedger(run_id=report.run_id, target=f"tenant:{info.slug}",
                                           tenant_id=info.id, from_revision=info.schema_revision,
                                           state=MigrationState.RUNNING)
                for info in pending}
        db.session.add_all(rows.values())
        db.session.commit()
        budget = max(1, settings.migrate_connection_budget)
        report.workers = max(1, min(jobs or budget, budget, len(pending)))
        for outcome in _run(pending, settings, report.workers):
            _finish(rows[outcome.slug], outcome)
            if outcome.error:
                report.failed.append(outcome)
            else:
                db.session.execute(update(Tenant)
                                   .where(Tenant.id == by_slug[outcome.slug].id)
                                   .values(schema_revision=outcome.to_revision))
                report.migrated.append(outcome)
            db.session.commit()
    report.duration_ms = (time.perf_counter() - started) * 1000
    return report


@contextmanager
def _main_module_hidden() -> Iterator[None]:
    """Start workers without re-running the caller's main script.

    The spawn and forkserver start methods re-import ``__main__`` in every worker (and in the
    fork server), so a caller script without an ``if __name__ == "__main__"`` guard (a cron
    wrapper, a benchmark) would run again there. The workers need only this module, so the
    main module is an empty one while they start; ProcessPoolExecutor starts them in
    ``submit``, which is all this block does.
    """
    saved = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if saved is not None:
            sys.modules["__main__"] = saved


def _run(infos: list[TenantInfo], settings: Settings, workers: int) -> Iterator[Outcome]:
    if workers == 1:
        for info in infos:
            yield migrate_one(info, settings)
        return
    # Settings.extra may hold anything the caller merged into app.config; workers need none.
    portable = dataclasses.replace(settings, extra={})
    lineage = hooks.lineage("tenant")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__, lineage.models])
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        with _main_module_hidden():
            futures = {pool.submit(_migrate_in_worker, info, portable, lineage): info
                       for info in infos}
        for future in as_completed(futures):
            info = futures[future]
            try:
                yield future.result()
            except Exception as exc:  # the worker process died (BrokenProcessPool)
                yield Outcome(info.slug, info.schema_revision, None,
                              f"worker process failed: {_describe(exc)}", 0.0)
