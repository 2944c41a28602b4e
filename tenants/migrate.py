"""Migrating every tenant database: the template first, then the tenants in parallel.

Tenants whose registry revision is already the head are skipped without starting Alembic.
Alembic's ``context``/``op`` proxies are process-global, so parallel upgrades run in worker
processes (forkserver: no inherited connections), at most the connection budget at once.
Each tenant's outcome is written to the migration ledger; a failure does not stop the others.
"""

from __future__ import annotations

import multiprocessing
import time
import traceback
import uuid
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select

from qalitel.config import Settings
from qalitel.extensions import db
from tenants import migrations
from tenants.engines import TenantInfo, build_engine
from tenants.provisioning import ensure_sqlite_template, migrate_pg_template
from tenants.registry import (
    DatabaseServer,
    MigrationLedger,
    MigrationState,
    Tenant,
    TenantStatus,
    validate_slug,
)


@dataclass
class Outcome:
    slug: str
    from_revision: str | None
    to_revision: str | None
    error: str | None
    duration_ms: float


@dataclass
class MigrationReport:
    run_id: str
    head: str
    migrated: list[Outcome] = field(default_factory=list)
    failed: list[Outcome] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    templates: list[str] = field(default_factory=list)
    duration_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed


def migrate_one(info: TenantInfo, settings: Settings, target: str = "head") -> Outcome:
    """Upgrade one tenant database, connecting as the tenant's own role."""
    started = time.perf_counter()
    before: str | None = info.schema_revision
    try:
        engine = build_engine(info, settings, pooled=False)
        try:
            with engine.begin() as conn:
                before = migrations.current_revision(conn)
                after = migrations.upgrade(conn, "tenant", target)
        finally:
            engine.dispose()
        return Outcome(info.slug, before, after, None, (time.perf_counter() - started) * 1000)
    except Exception as exc:
        detail = "".join(traceback.format_exception_only(exc)).strip()
        return Outcome(info.slug, before, None, detail[:4000],
                       (time.perf_counter() - started) * 1000)


def _select(slugs: list[str] | None, retry_failed: bool) -> list[Tenant]:
    query = select(Tenant).where(Tenant.status.in_([TenantStatus.ACTIVE, TenantStatus.SUSPENDED]))
    if slugs:
        for slug in slugs:
            validate_slug(slug)
        query = query.where(Tenant.slug.in_(slugs))
        tenants = list(db.session.execute(query.order_by(Tenant.slug)).scalars())
        missing = sorted(set(slugs) - {t.slug for t in tenants})
        if missing:
            raise LookupError(f"no active or suspended tenant named {', '.join(missing)}")
    else:
        tenants = list(db.session.execute(query.order_by(Tenant.slug)).scalars())
    if retry_failed:
        failed = set(_last_failed_tenant_ids())
        tenants = [t for t in tenants if t.id in failed]
    return tenants


def _last_failed_tenant_ids() -> list[int]:
    rows = db.session.execute(
        select(MigrationLedger.tenant_id, MigrationLedger.state)
        .where(MigrationLedger.tenant_id.is_not(None))
        .order_by(MigrationLedger.tenant_id, MigrationLedger.id)).all()
    last: dict[int, MigrationState] = {}
    for tenant_id, state in rows:
        last[tenant_id] = state
    return [tid for tid, state in last.items() if state is not MigrationState.OK]


def _ledger(run_id: str, target: str, tenant_id: int | None, outcome: Outcome) -> MigrationLedger:
    now = datetime.now(UTC)
    return MigrationLedger(
        run_id=run_id, target=target, tenant_id=tenant_id,
        from_revision=outcome.from_revision, to_revision=outcome.to_revision,
        state=MigrationState.FAILED if outcome.error else MigrationState.OK,
        error=outcome.error, duration_ms=outcome.duration_ms, started_at=now, finished_at=now)


def migrate_templates(settings: Settings, report: MigrationReport) -> None:
    started = time.perf_counter()
    ensure_sqlite_template(settings)
    report.templates.append("sqlite")
    for server in db.session.execute(select(DatabaseServer)).scalars().all():
        before = server.template_revision
        try:
            after = migrate_pg_template(settings, server)
            error = None
        except Exception as exc:
            db.session.rollback()
            after, error = None, str(exc)[:4000]
        outcome = Outcome(f"template:{server.name}", before, after, error,
                          (time.perf_counter() - started) * 1000)
        if before != after or error:
            db.session.add(_ledger(report.run_id, outcome.slug, None, outcome))
        if error:
            report.failed.append(outcome)
        else:
            report.templates.append(server.name)
    db.session.commit()


def migrate_tenants(settings: Settings, slugs: list[str] | None = None, *,
                    jobs: int | None = None, retry_failed: bool = False) -> MigrationReport:
    """Migrate the templates, then the selected (default: all) tenants to head."""
    started = time.perf_counter()
    head = migrations.head("tenant")
    report = MigrationReport(run_id=str(uuid.uuid4()), head=head)
    migrate_templates(settings, report)
    tenants = _select(slugs, retry_failed)
    pending = [t for t in tenants if t.schema_revision != head]
    report.skipped = [t.slug for t in tenants if t.schema_revision == head]
    if pending:
        by_slug = {t.slug: t for t in pending}
        infos = [TenantInfo.from_row(t) for t in pending]
        workers = max(1, min(jobs or settings.migrate_connection_budget,
                             settings.migrate_connection_budget, len(infos)))
        for outcome in _run(infos, settings, workers):
            tenant = by_slug[outcome.slug]
            db.session.add(_ledger(report.run_id, f"tenant:{tenant.slug}", tenant.id, outcome))
            if outcome.error:
                report.failed.append(outcome)
            else:
                tenant.schema_revision = outcome.to_revision
                report.migrated.append(outcome)
            db.session.commit()
    report.duration_ms = (time.perf_counter() - started) * 1000
    return report


def _run(infos: list[TenantInfo], settings: Settings, workers: int):
    if workers == 1:
        for info in infos:
            yield migrate_one(info, settings)
        return
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["tenants.migrate"])
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {pool.submit(migrate_one, info, settings): info for info in infos}
        for future in as_completed(futures):
            info = futures[future]
            try:
                yield future.result()
            except Exception as exc:  # a worker that died
                yield Outcome(info.slug, info.schema_revision, None, f"worker failed: {exc}", 0.0)
