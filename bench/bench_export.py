"""A full export (``qalitel tenants export``) of a tenant with 10,000 records and 200 files,
and its import back (``tenants import --as``), on a fresh embedded instance in a temporary
folder (with ``--backend postgresql``: tenants on ``QALITEL_TEST_PG_URL``). Prints seconds
and MB/s of the archive written or read. Nothing is asserted: this reports.

    .venv/bin/python bench/bench_export.py [--records 10000] [--files 200] [--file-kb 200]
        [--backend sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def seed(app, slug: str, records: int, files: int, file_kb: int) -> int:
    """The tenant, its records and files; returns the bytes of files stored."""
    import io

    from sqlalchemy import insert

    from core.filestore import FileStore
    from qalitel.records.files.models import Attachment
    from qalitel.records.models import NonConformity
    from tenants.context import tenant_context
    from tenants.engines import TenantInfo
    from tenants.provisioning import create_tenant

    settings = app.extensions["qalitel_settings"]
    made = create_tenant(settings, slug, "Bench Company", f"admin@{slug}.example",
                         "bench password 1234")
    info = TenantInfo.from_row(made.tenant)
    with tenant_context(info) as ctx:
        rows = [{"number": i + 1, "title": f"Record {i} — weld seam {i % 97}",
                 "description": "Observed during inspection. " * 8} for i in range(records)]
        ctx.session.execute(insert(NonConformity), rows)
        store = FileStore.for_tenant(settings, info.uid)
        stored = 0
        for i in range(files):
            staged = store.stage(io.BytesIO(os.urandom(file_kb * 1024)), 1 << 30)
            store.commit(staged)
            stored += staged.size
            ctx.session.add(Attachment(record_id=i + 1, name=f"photo-{i}.png",
                                       size=staged.size, sha256=staged.sha256, kind="png",
                                       content_type="image/png"))
        ctx.session.commit()
    return stored


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--file-kb", type=int, default=200)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args()
    args.pg_url = "" if args.backend == "sqlite" else os.environ.get(
        "QALITEL_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    from core.db import db
    from qalitel import create_app
    from qalitel.exports.tenant import write_tenant_archive
    from qalitel.exports.tenant_import import import_tenant
    from tenants.context import tenant_context
    from tenants.engines import TenantInfo
    from tenants.provisioning import destroy_tenant
    from tenants.registry import Tenant
    from tenants.service import get_tenant, init_platform
    from tenants.templates import ensure_sqlite_template

    with tempfile.TemporaryDirectory(prefix="qalitel-bench-export-") as folder:
        prefix = f"qbx{os.getpid()}_"
        app = create_app({"instance_dir": Path(folder) / "instance",
                          "tenant_server_url": args.pg_url, "pg_name_prefix": prefix,
                          "template_database": f"{prefix}template"})
        with app.app_context():
            init_platform()
            settings = app.extensions["qalitel_settings"]
            ensure_sqlite_template(settings)
            if args.pg_url:
                from tenants.servers import ensure_server
                from tenants.templates import migrate_pg_template

                migrate_pg_template(settings, ensure_server(settings, "default", args.pg_url))
            files_bytes = seed(app, "bench", args.records, args.files, args.file_kb)
            info = TenantInfo.from_row(get_tenant("bench"))
            archive = Path(folder) / "bench.zip"
            started = time.perf_counter()
            with tenant_context(info) as ctx:
                write_tenant_archive(info, settings, ctx.engine, archive, datetime.now(UTC))
            export_s = time.perf_counter() - started
            size = archive.stat().st_size
            started = time.perf_counter()
            import_tenant(settings, archive, "bench-copy")
            import_s = time.perf_counter() - started
            backend = "postgresql" if args.pg_url else "sqlite"
            mb = 1024 * 1024
            print(f"{backend}: {args.records} records, {args.files} files of {args.file_kb} KB "
                  f"({files_bytes / mb:.1f} MB), load average {os.getloadavg()[0]:.1f}")
            print(f"export: {export_s:.2f} s, archive {size / mb:.1f} MB, "
                  f"{size / mb / export_s:.1f} MB/s")
            print(f"import: {import_s:.2f} s, {size / mb / import_s:.1f} MB/s")
            for tenant in db.session.query(Tenant).all():
                destroy_tenant(settings, tenant)
            if args.pg_url:
                from tenants import pg

                pg.drop_prefixed(args.pg_url, prefix)


if __name__ == "__main__":
    main()
