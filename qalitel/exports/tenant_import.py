"""``qalitel tenants import FILE --as SLUG``: a new tenant from an export archive.

The archive is checked whole first (names, sizes, ratios, the platform's signature of the
manifest, every member's SHA-256, schema revision, tables and columns); only then is the
tenant provisioned, with no first rows, and every table loaded in foreign-key order in one
transaction through the tenant's own credentials (PostgreSQL sequences then set past the
largest id), and the files put into its store; the erasure ledger of the archive's tenant is
then replayed (an export taken before an erasure never brings the person back). Any failure
destroys the new tenant again: nothing is left half-made; a row the database refuses (a
forged duplicate id, a broken reference) is reported without its values.

An archive not signed by this platform (no ``manifest.sig``, or one that does not match:
altered, or exported by another platform) is refused unless ``unsigned`` is passed
(``--unsigned``): then :attr:`Imported.signature` says what was wrong, for the command to
print.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Integer, Table, func, select, text
from sqlalchemy.exc import SQLAlchemyError

from backups import replay
from core import crypto
from core.config import Settings
from core.db import db
from core.filestore import FileStore, remove_tenant_files
from qalitel.exports.archive import ArchiveReader, ExportArchiveError, Limits, canonical
from qalitel.exports.tenant import read_rows, table_member, tenant_tables
from qalitel.exports.values import from_json
from tenants import migrations
from tenants.engines import TenantInfo, build_engine
from tenants.registry import Tenant, TenantStatus, validate_slug

BATCH = 500
SKIPPED = ("tenant_identity",)  # the new tenant's own identity row stays


@dataclass(frozen=True)
class Imported:
    slug: str
    backend: str
    schema_revision: str | None
    rows: dict[str, int]
    files: int
    #: None when the platform's signature checked; else why not (imported with ``unsigned``).
    signature: str | None = None


def signature_problem(settings: Settings, reader: ArchiveReader) -> str | None:
    """Why the archive's manifest is not signed by this platform; None when it is."""
    if reader.signature is None:
        return "the archive is not signed (no readable manifest.sig)"
    if not crypto.signature_ok(settings.encryption_key, canonical(reader.manifest),
                               reader.signature):
        return ("its signature does not match its manifest: the archive was altered, or "
                "exported by another platform")
    return None


def _check_revision(revision: Any) -> None:
    if not isinstance(revision, str) or not revision:
        raise ExportArchiveError("the manifest names no schema revision")
    if not migrations.knows("tenant", revision):
        raise ExportArchiveError(f"the archive's schema revision {revision[:64]!r} is newer "
                                 "than this code (or unknown to it): upgrade the code first")


def check_manifest(manifest: dict[str, Any]) -> dict[str, Table]:
    """The tables the archive holds, once its manifest is one this code can load."""
    _check_revision(manifest.get("schema_revision"))
    tenant = manifest.get("tenant")
    if not isinstance(tenant, dict) or not isinstance(tenant.get("name"), str):
        raise ExportArchiveError("the manifest names no tenant")
    known = {t.name: t for t in tenant_tables()}
    listed = manifest.get("tables")
    if not isinstance(listed, dict):
        raise ExportArchiveError("the manifest lists no tables")
    unknown = sorted(set(listed) - set(known))
    if unknown:
        raise ExportArchiveError(f"unknown table(s) in the archive: {', '.join(unknown[:5])}")
    for name, entry in listed.items():
        if (not isinstance(entry, dict) or entry.get("member") != table_member(name)
                or not isinstance(entry.get("rows"), int)
                or entry["member"] not in manifest["members"]):
            raise ExportArchiveError(f"the manifest entry of table {name} is malformed")
    files = manifest.get("files")
    if not isinstance(files, list) or any(
            not isinstance(f, dict) or f.get("path") != f"files/{f.get('sha256')}"
            or f.get("path") not in manifest["members"]
            or manifest["members"][f["path"]]["sha256"] != f["sha256"] for f in files):
        raise ExportArchiveError("the manifest's file list is malformed")
    return {name: known[name] for name in known if name in listed}


def _insert(conn: Connection, table: Table, reader: ArchiveReader, expected: int) -> int:
    columns = {c.name: c for c in table.columns}
    batch: list[dict[str, Any]] = []
    count = 0
    member = table_member(table.name)
    with reader.lines(member) as lines:
        try:
            for row in read_rows(lines, table):
                extra = set(row) - set(columns)
                if extra:
                    raise ValueError(f"{member}: unknown column(s) {', '.join(sorted(extra))}")
                batch.append({k: from_json(columns[k], v) for k, v in row.items()})
                count += 1
                if len(batch) == BATCH:
                    conn.execute(table.insert(), batch)
                    batch = []
        except ValueError as exc:
            raise ExportArchiveError(str(exc)) from exc
    if batch:
        conn.execute(table.insert(), batch)
    if count != expected:
        raise ExportArchiveError(f"{member} holds {count} rows, its manifest says {expected}")
    return count


def _reset_sequences(conn: Connection, tables: list[Table]) -> None:
    """PostgreSQL: each serial column's sequence continues past the largest id loaded."""
    for table in tables:
        for column in table.primary_key.columns:
            if not isinstance(column.type, Integer):
                continue
            top = conn.execute(select(func.max(column))).scalar() or 0
            conn.execute(text("SELECT setval(pg_get_serial_sequence(:t, :c), :v, :called)"),
                         {"t": table.name, "c": column.name, "v": max(top, 1),
                          "called": top > 0})


def _rows_of(conn: Connection, table: Table, reader: ArchiveReader, expected: int) -> int:
    """:func:`_insert`, a refusal of the database reported by table and kind only: its
    message would quote the rows (password hashes, tokens)."""
    try:
        return _insert(conn, table, reader, expected)
    except SQLAlchemyError as exc:
        kind = type(getattr(exc, "orig", None) or exc).__name__
        raise ExportArchiveError(
            f"{table_member(table.name)}: the database refused its rows ({kind}: e.g. a "
            "duplicate id or a broken reference): the archive is not a consistent "
            "export") from None


def _load(info: TenantInfo, settings: Settings, reader: ArchiveReader,
          tables: dict[str, Table]) -> dict[str, int]:
    manifest = reader.manifest
    counts: dict[str, int] = {}
    engine = build_engine(info, settings, pooled=False)
    try:
        with engine.begin() as conn:
            loaded = [t for t in tables.values() if t.name not in SKIPPED]
            for table in loaded:
                counts[table.name] = _rows_of(conn, table, reader,
                                              manifest["tables"][table.name]["rows"])
            if engine.dialect.name == "postgresql":
                _reset_sequences(conn, loaded)
            store = FileStore.for_tenant(settings, info.uid)
            for entry in manifest["files"]:
                with reader.binary(entry["path"]) as stream:
                    staged = store.stage(stream, max_bytes=entry["size"])
                if staged.sha256 != entry["sha256"]:
                    store.discard(staged)
                    raise ExportArchiveError(f"{entry['path']} differs from its manifest")
                store.commit(staged)
    except SQLAlchemyError as exc:  # at the commit: its message would quote rows too
        kind = type(getattr(exc, "orig", None) or exc).__name__
        raise ExportArchiveError(f"the database refused the archive's rows ({kind}): the "
                                 "archive is not a consistent export") from None
    finally:
        engine.dispose()
    return counts


def import_tenant(settings: Settings, path: Path, slug: str, name: str | None = None, *,
                  backend: str | None = None, server_name: str | None = None,
                  limits: Limits | None = None, unsigned: bool = False) -> Imported:
    """Provision tenant ``slug`` from the archive at ``path`` (see the module docstring)."""
    from tenants.provisioning import create_tenant, destroy_tenant

    slug = validate_slug(slug)
    if db.session.execute(select(Tenant.id).where(Tenant.slug == slug)).first() is not None:
        raise ExportArchiveError(f"tenant {slug!r} already exists: import creates a new one")
    reader = ArchiveReader(path, limits)
    try:
        problem = signature_problem(settings, reader)
        if problem is not None and not unsigned:
            raise ExportArchiveError(f"refused: {problem}. Only an archive exported by this "
                                     "platform is imported; pass --unsigned to import this "
                                     "one anyway, on your own responsibility")
        tables = check_manifest(reader.manifest)
        reader.verify()
        made = create_tenant(settings, slug, name or reader.manifest["tenant"]["name"],
                             f"import@{slug}.example", backend=backend, server_name=server_name,
                             first_rows=lambda _admin: [])
        info = TenantInfo.from_row(made.tenant)
        try:
            made.tenant.status = TenantStatus.SUSPENDED  # no sign-in while it fills up
            db.session.commit()
            counts = _load(info, settings, reader, tables)
            source_uid = reader.manifest["tenant"].get("uid")
            uids = (source_uid, info.uid) if isinstance(source_uid, str) else (info.uid,)
            try:
                replay.replay(info, settings, uids)  # an erased person never comes back
            except Exception as exc:
                raise ExportArchiveError("the erasure ledger could not be applied to the "
                                         f"imported data ({exc}): nothing is imported") from exc
            made.tenant.status = TenantStatus.ACTIVE
            db.session.commit()
        except BaseException:
            db.session.rollback()
            destroy_tenant(settings, made.tenant)
            remove_tenant_files(settings, info.uid)
            raise
    finally:
        reader.close()
    return Imported(info.slug, info.backend.value, reader.manifest["schema_revision"],
                    counts, len(reader.manifest["files"]), problem)
