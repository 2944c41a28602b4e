"""Backups: ``backup run --all`` beside a plain copy loop, restore and ``verify --deep``.

For each backend, N tenants (default 100) get 1,000 non-conformities and 5 small attached
files each; then, in one run:

* a plain loop over the same databases — PostgreSQL: ``pg_dump --format=custom`` as the
  admin role; SQLite: the online backup API — into a folder, once one at a time (also the
  warm-up) and twice with as many threads as the app uses (the faster of the two counts),
  with the ``pg_dump`` binary the app picks; once more "durable": age-encrypted and written
  to two folders, fsynced (the floor of an encrypted backup on two media);
* the real ``qalitel backup run --all`` (in process, through the CLI) to two folder targets,
  encrypted with age to a key made here, while a thread polls ``pg_stat_activity`` for the
  connections of this run's tenant roles and platform database;
* in-place ``backup restore`` of one tenant ``--runs`` times (p50, p90), and ``--as`` a new
  tenant a few times;
* ``backup verify SLUG --deep`` ``--verify-runs`` times (median).

Prints tenants/s and MB/s of each, the ratio app / plain (target ≥ 0.8×) and the peak
connections beside the budget. Nothing is asserted on time; the exit status is 1 only when
a backup, restore or verification failed. Everything made (databases, roles, files) is
dropped at the end. PostgreSQL: ``--pg-url``, else ``QALITEL_BENCH_PG_URL``, else
``QALITEL_TEST_PG_URL`` (set by ``python -m tests.pgcluster``, a throwaway cluster), else
``postgresql://postgres@127.0.0.1:5432/postgres``.

    .venv/bin/python bench/bench_backup.py [--backend sqlite|postgresql|both] [--tenants 100]
        [--records 1000] [--files 5] [--file-kb 20] [--runs 10] [--verify-runs 3] [--budget 8]
        [--pg-bin-dir DIR] [--profile FILE]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import secrets
import shlex
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import backup_data as data  # noqa: E402  (after the path is set)

DEFAULT_PG = (os.environ.get("QALITEL_BENCH_PG_URL") or os.environ.get("QALITEL_TEST_PG_URL")
              or "postgresql://postgres@127.0.0.1:5432/postgres")
TARGET_RATIO = 0.8
PLATFORM_OVERFLOW = 2  # max_overflow of the platform engine (qalitel._platform_engine_options)
MB = 1_000_000


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def rate(label: str, seconds: float, count: int, size: int, cpu: float,
         server: float | None) -> str:
    text = (f"  {label:<42} {seconds:7.2f} s {count / seconds:6.1f} tenants/s "
            f"{size / MB / seconds:7.2f} MB/s ({size / MB:5.1f} MB)  "
            f"CPU ms/tenant: client {cpu * 1000 / count:4.0f}")
    if server is not None:
        text += f", server {server * 1000 / count:4.0f}"
    return text


def times(label: str, values: list[float]) -> str:
    return (f"  {label:<44} p50 {statistics.median(values):6.2f} s  p90 {pct(values, 0.9):6.2f} s"
            f"  min {min(values):6.2f} s  (n={len(values)})")


def invoke(app, *args: str) -> tuple[float, dict]:
    """Run a ``qalitel`` command in process; its seconds and its ``--json`` document."""
    started = time.perf_counter()
    result = app.test_cli_runner().invoke(args=[*args, "--json"])
    elapsed = time.perf_counter() - started
    if result.exit_code != 0:
        raise RuntimeError(f"qalitel {' '.join(args)} exited {result.exit_code}: "
                           f"{result.output[-2000:]} {result.exception!r}")
    return elapsed, json.loads(result.stdout)


def platform_url(pg_url: str, database: str) -> str:
    from sqlalchemy import make_url

    return make_url(pg_url).set(drivername="postgresql+psycopg2", database=database) \
        .render_as_string(hide_password=False)


def make_app(args: argparse.Namespace, backend: str, folder: Path, prefix: str):
    import pyrage

    from qalitel import create_app

    identity = pyrage.x25519.Identity.generate()
    identity_file = folder / "identity.txt"
    identity_file.write_text(f"# bench key\n{identity}\n")
    media = [folder / "media-a", folder / "media-b"]
    for medium in media:
        medium.mkdir()
    overrides: dict = {"instance_dir": folder / "instance", "pg_name_prefix": prefix,
                       "template_database": f"{prefix}template",
                       "secret_key": secrets.token_urlsafe(32),
                       "migrate_connection_budget": args.budget,
                       "backup_targets": tuple(str(m) for m in media),
                       "backup_recipient": str(identity.to_public()),
                       "backup_identity": identity_file,
                       "pg_bin_dir": args.pg_bin_dir,
                       "tenant_server_url": args.pg_url if backend == "postgresql" else ""}
    if backend == "postgresql":
        from psycopg2 import sql

        from tenants import pg

        with pg.admin_connection(args.pg_url) as conn, conn.cursor() as cur:
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(f"{prefix}platform")))
        overrides["database_url"] = platform_url(args.pg_url, f"{prefix}platform")
    return create_app(overrides), media


def measure_backend(args: argparse.Namespace, backend: str) -> int:
    from werkzeug.security import generate_password_hash

    from backups.dump import libpq_env, pg_tool
    from backups.run import workers_for
    from core.db import db
    from tenants.engines import sqlite_path
    from tenants.pg import libpq_dsn
    from tenants.registry import Tenant
    from tenants.service import init_platform

    run = secrets.token_hex(3)
    prefix = f"qtbk{run}_"
    folder = Path(tempfile.mkdtemp(prefix="qalitel-bench-backup-"))
    app, media = make_app(args, backend, folder, prefix)
    settings = app.extensions["qalitel_settings"]
    failures = 0
    print(f"\n[{backend}] instance {folder}, name prefix {prefix}, {args.tenants} tenants × "
          f"{args.records} records + {args.files} files of {args.file_kb} KB", flush=True)
    try:
        with app.app_context():
            init_platform()
        cheap = generate_password_hash("bench backup password", method="pbkdf2:sha256:1000")
        started = time.perf_counter()
        slugs = [f"bk{i}-{run}" for i in range(args.tenants)]
        for i, slug in enumerate(slugs):
            data.populate(app, slug, backend, args.records, args.files, args.file_kb * 1000,
                          cheap, seed=i)
        with app.app_context():
            tenants = {t.slug: t for t in db.session.query(Tenant).all()}
            sources: list = [t.database_name if backend == "postgresql"
                             else sqlite_path(settings, t.database_name)
                             for t in (tenants[s] for s in slugs)]
            db.session.remove()
        app.extensions["qalitel_engines"].clear()
        print(f"  built in {time.perf_counter() - started:.1f} s", flush=True)

        jobs = workers_for(settings, len(slugs))
        server = (data.server_cpu(libpq_dsn(args.pg_url)) if backend == "postgresql"
                  else lambda: None)
        if backend == "postgresql":
            import psycopg2
            from sqlalchemy import make_url

            with psycopg2.connect(libpq_dsn(args.pg_url), connect_timeout=10) as conn:
                major = conn.server_version // 10000
            conn.close()
            pg_dump = pg_tool(settings, "pg_dump", major)  # the app's choice for this server
            wrapper = "Debian's pg_wrapper" if "pg_wrapper" in str(Path(pg_dump).resolve()) \
                else "no wrapper"
            print(f"  pg_dump and pg_restore: {pg_dump} ({wrapper}), for the app and the plain "
                  "loop alike", flush=True)
            copy = data.pg_dump_copier(pg_dump, libpq_env(make_url(args.pg_url)))
        else:
            copy = data.sqlite_copier
        print(f"  {data.load()} (before)", flush=True)
        plain_name = "pg_dump --format=custom" if backend == "postgresql" else "sqlite3 backup"
        serial = data.plain_loop(sources, copy, folder / "plain-serial", 1, server)
        plains = [data.plain_loop(sources, copy, folder / "plain-parallel-1", jobs, server)]

        peaks = data.Peaks()
        watcher = None
        if backend == "postgresql":
            watcher = threading.Thread(target=data.sample_connections, args=(
                libpq_dsn(args.pg_url), prefix, f"{prefix}platform", peaks))
            watcher.start()
        try:
            first = backup_run(app, args, f"{backend}-first", server)
            plains.append(data.plain_loop(sources, copy, folder / "plain-parallel-2", jobs,
                                          server))
            second = backup_run(app, args, f"{backend}-second", server)
            durable = data.plain_loop(
                sources, data.durable_copier(copy, settings.backup_recipient),
                folder / "plain-durable", jobs, server)
        finally:
            peaks.stop.set()
            if watcher is not None:
                watcher.join()
        written = sum(data.folder_bytes(m) for m in media)
        print(f"  {data.load()} (after the backups)", flush=True)

        print(rate(f"plain {plain_name}, one at a time", serial.seconds, serial.count,
                   serial.bytes, serial.cpu, serial.server))
        for n, plain in enumerate(plains, 1):
            print(rate(f"plain {plain_name}, {jobs} threads (#{n})", plain.seconds,
                       plain.count, plain.bytes, plain.cpu, plain.server))
        print(rate(f"plain + age + 2 fsynced copies, {jobs} threads", durable.seconds,
                   durable.count, durable.bytes, durable.cpu, durable.server))
        best = min(plains, key=lambda p: p.seconds)
        for label, (seconds, cpu, server, outcomes) in (("first", first), ("second", second)):
            bad = [o for o in outcomes if o["status"] != "complete" or o["error"]]
            failures += len(bad)
            archived = sum(o["size"] or 0 for o in outcomes)
            print(rate(f"backup run --all, {label} ({jobs} workers)", seconds, len(outcomes),
                       archived, cpu, server) + "  [× 2 targets]")
            if bad:
                print(f"  FAILED backups: {len(bad)}, e.g. {bad[:2]}")
            ratio = best.seconds / seconds
            verdict = "ok" if ratio >= TARGET_RATIO else "BELOW TARGET"
            print(f"    ratio to the plain loop with {jobs} threads (tenants/s): {ratio:.2f}×  "
                  f"target ≥ {TARGET_RATIO}×: {verdict}; to one at a time: "
                  f"{serial.seconds / seconds:.2f}×; to the durable plain loop: "
                  f"{durable.seconds / seconds:.2f}×")
        print(f"  written on the two targets: {written / MB:.1f} MB (both runs)")
        if backend == "postgresql":
            budget = args.budget + settings.platform_pool_size + PLATFORM_OVERFLOW
            fits = "ok" if peaks.total <= budget else "OVER"
            print(f"  peak connections (pg_stat_activity, {peaks.samples} samples): tenant "
                  f"{peaks.tenant} ≤ QALITEL_MIGRATE_CONNECTION_BUDGET {args.budget}, platform "
                  f"{peaks.platform} ≤ pool {settings.platform_pool_size}+{PLATFORM_OVERFLOW}; "
                  f"total {peaks.total} ≤ {budget}: {fits}")
        outcomes = second[3]
        failures += restore_and_verify(app, args, slugs[0], outcomes, run)
    finally:
        cleanup(app, args, backend, prefix)
        shutil.rmtree(folder, ignore_errors=True)
    return failures


def backup_run(app, args: argparse.Namespace, name: str,
               server) -> tuple[float, float, float | None, list[dict]]:
    """``qalitel backup run --all --json``: its seconds, CPU seconds (this process and the
    tools it ran; the server's when readable) and outcomes; profiled on request."""
    from core.db import db

    profiler = cProfile.Profile() if args.profile else None
    cpu, before = data.cpu_seconds(), server()
    if profiler is not None:
        profiler.enable()
    try:
        seconds, document = invoke(app, "backup", "run", "--all")
    finally:
        if profiler is not None:
            profiler.disable()
            report(profiler, args.profile, name)
    cpu = data.cpu_seconds() - cpu
    with app.app_context():  # close the pools, so that their backends' CPU is counted
        app.extensions["qalitel_engines"].clear()
        db.engine.dispose()
    return seconds, cpu, data.server_delta(server, before), document["backups"]


def report(profiler: cProfile.Profile, path: Path, name: str) -> None:
    """Save the profile of ``backup run`` and print where it spent its time."""
    out = path.with_name(f"{path.stem}-{name}{path.suffix or '.prof'}")
    profiler.dump_stats(out)
    print(f"  profile of backup run saved to {out} (calling thread only: use --budget 2 for "
          "one worker)")
    stats = pstats.Stats(profiler, stream=sys.stdout).strip_dirs()
    stats.sort_stats("cumulative").print_stats(35)


def restore_and_verify(app, args: argparse.Namespace, slug: str, outcomes: list[dict],
                       run: str) -> int:
    from core.db import db
    from tenants.provisioning import destroy_tenant
    from tenants.registry import Tenant

    backup_id = next(str(o["backup_id"]) for o in outcomes if o["tenant"] == slug)
    in_place = [invoke(app, "backup", "restore", slug, backup_id)[0] for _ in range(args.runs)]
    print(times(f"backup restore {slug} (in place)", in_place))
    as_new = []
    for n in range(max(1, min(3, args.runs))):
        new_slug = f"rs{n}-{run}"
        as_new.append(invoke(app, "backup", "restore", slug, backup_id, "--as", new_slug)[0])
        with app.app_context():
            settings = app.extensions["qalitel_settings"]
            app.extensions["qalitel_engines"].clear()
            destroy_tenant(settings, db.session.query(Tenant).filter_by(slug=new_slug).one())
            db.session.remove()
    print(times("backup restore --as NEWSLUG (new tenant)", as_new))
    deep, problems = [], 0
    for _ in range(args.verify_runs):
        seconds, document = invoke(app, "backup", "verify", slug, "--deep")
        deep.append(seconds)
        problems += sum(not d["ok"] for d in document["deep"]) + (not document["deep"])
    print(times(f"backup verify {slug} --deep", deep))
    return problems


def cleanup(app, args: argparse.Namespace, backend: str, prefix: str) -> None:
    from core.db import db
    from tenants import pg
    from tenants.provisioning import destroy_tenant
    from tenants.registry import Tenant

    destroyed = 0
    with app.app_context():
        app.extensions["qalitel_engines"].clear()
        settings = app.extensions["qalitel_settings"]
        for tenant in db.session.query(Tenant).all():
            try:
                destroy_tenant(settings, tenant)
                destroyed += 1
            except Exception as exc:  # keep cleaning; the prefix sweep drops the rest
                db.session.rollback()
                print(f"cleanup of {tenant.slug} failed: {exc}", file=sys.stderr)
        db.session.remove()
        db.engine.dispose()
    left = pg.drop_prefixed(args.pg_url, prefix) if backend == "postgresql" else 0
    print(f"  cleanup: {destroyed} tenants destroyed, {left} more PostgreSQL objects of "
          f"prefix {prefix} dropped (template, platform database)", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--records", type=int, default=1000, help="non-conformities per tenant")
    parser.add_argument("--files", type=int, default=5, help="attached files per tenant")
    parser.add_argument("--file-kb", type=int, default=20, help="size of each file (kB)")
    parser.add_argument("--runs", type=int, default=10, help="in-place restores measured")
    parser.add_argument("--verify-runs", type=int, default=3, help="deep verifications measured")
    parser.add_argument("--budget", type=int, default=8,
                        help="QALITEL_MIGRATE_CONNECTION_BUDGET (tenant connections of a run)")
    parser.add_argument("--pg-url", default=DEFAULT_PG, help="admin DSN of the PostgreSQL server")
    parser.add_argument("--pg-bin-dir", type=Path, default=None,
                        help="QALITEL_PG_BIN_DIR for the app and the plain loop (default: PATH; "
                             "Debian: /usr/lib/postgresql/15/bin skips pg_wrapper)")
    parser.add_argument("--profile", type=Path, metavar="FILE",
                        help="cProfile the backup run (one file per backend) and print the "
                             "top functions; only the calling thread is seen: add --budget 2")
    args = parser.parse_args(argv)
    if min(args.tenants, args.runs, args.verify_runs, args.budget) < 1 or args.records < 0 \
            or args.files < 0 or args.file_kb < 1:
        parser.error("--tenants, --runs, --verify-runs, --budget and --file-kb are at least 1; "
                     "--records and --files at least 0")
    print("reproduce:", shlex.join([".venv/bin/python", "bench/bench_backup.py",
                                    *(argv if argv is not None else sys.argv[1:])]))
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    if "postgresql" in backends:
        from sqlalchemy import make_url

        print(f"PostgreSQL: {make_url(args.pg_url).render_as_string(hide_password=True)}")
    failures = sum(measure_backend(args, backend) for backend in backends)
    if failures:
        print(f"\n{failures} failure(s): see above")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
