"""``qalitel tenants export``: everything a tenant holds, as one archive.

- ``tables/<table>.json``: every table of the tenant schema, one row per line (valid JSON
  as a whole, streamed both ways; values as in :mod:`qalitel.exports.values`);
- ``people/users.csv``, ``people/groups.csv``, ``people/memberships.csv``: the people, for
  Excel (UTF-8 with BOM; no password hash or session token);
- ``files/<sha256>``: every attached file, named by its content hash (``attachments.json``
  maps hashes to the names users gave);
- ``manifest.json``: tenant, schema revision, time, row counts, files, and every member's
  SHA-256 and size; ``manifest.sig``: its Ed25519 signature by the platform
  (:mod:`qalitel.exports.archive`), checked by ``tenants import``.
"""

from __future__ import annotations

import csv
import importlib
import json
import os
import secrets
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Connection, Engine, Table, select

from core import crypto
from core.config import Settings
from core.filestore import FileStore
from qalitel.exports.archive import ArchiveWriter
from qalitel.exports.values import to_json
from qalitel.users.models import Group, User, UserGroup
from tenants import migrations
from tenants.engines import TenantInfo
from tenants.schema import TenantBase

BATCH = 1000
USER_COLUMNS = ("id", "email", "name", "profile", "locale", "suspended_at", "last_login_at",
                "created_at", "updated_at")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


class ExportBuildError(RuntimeError):
    """The tenant's data could not be exported as it is (e.g. a corrupt stored file)."""


def tenant_tables() -> list[Table]:
    """Every table of the tenant schema, parents before children (foreign-key order).

    The models are loaded by name, as the migration lineage does (:mod:`qalitel.tenancy`):
    some of their packages build exports themselves (``my_data``), so importing them here
    would make an import circle."""
    importlib.import_module("qalitel.tenant_models")
    return list(TenantBase.metadata.sorted_tables)


def table_member(name: str) -> str:
    return f"tables/{name}.json"


def _rows(conn: Connection, table: Table) -> Iterator[dict[str, Any]]:
    query = select(table).order_by(*table.primary_key.columns)
    result = conn.execution_options(yield_per=BATCH).execute(query)
    for row in result.mappings():
        yield {key: to_json(value) for key, value in row.items()}


def _write_table(writer: ArchiveWriter, conn: Connection, table: Table) -> int:
    columns = [c.name for c in table.columns]
    count = 0
    with writer.text(table_member(table.name)) as out:
        head = json.dumps({"table": table.name, "columns": columns}, ensure_ascii=False)
        out.write(head[:-1] + ', "rows": [\n')
        for row in _rows(conn, table):
            out.write((",\n" if count else "") + json.dumps(row, ensure_ascii=False))
            count += 1
        out.write("\n]}\n" if count else "]}\n")
    return count


def _cell(value: Any) -> Any:
    value = to_json(value)
    if isinstance(value, str) and value.startswith(_FORMULA):
        return "'" + value  # Excel would run it as a formula
    return value


def _write_csv(writer: ArchiveWriter, name: str, header: Iterable[str],
               rows: Iterable[Iterable[Any]]) -> None:
    with writer.text(f"people/{name}.csv", encoding="utf-8-sig") as out:
        sheet = csv.writer(out, dialect="excel")
        sheet.writerow(list(header))
        for row in rows:
            sheet.writerow([_cell(v) for v in row])


def _streamed(conn: Connection, query: Any) -> Iterator[Any]:
    yield from conn.execution_options(yield_per=BATCH).execute(query)


def _write_people(writer: ArchiveWriter, conn: Connection) -> None:
    users = User.__table__
    _write_csv(writer, "users", USER_COLUMNS,
               _streamed(conn, select(*(users.c[n] for n in USER_COLUMNS)).order_by(users.c.id)))
    groups = Group.__table__
    _write_csv(writer, "groups", ("id", "name", "created_at"),
               _streamed(conn, select(groups.c.id, groups.c.name, groups.c.created_at)
                         .order_by(groups.c.id)))
    links = UserGroup.__table__
    _write_csv(writer, "memberships", ("user_id", "user_email", "group_id", "group_name"),
               _streamed(conn, select(links.c.user_id, users.c.email, links.c.group_id,
                                      groups.c.name)
                         .join(users, users.c.id == links.c.user_id)
                         .join(groups, groups.c.id == links.c.group_id)
                         .order_by(links.c.user_id, links.c.group_id)))


def _write_files(writer: ArchiveWriter, settings: Settings, uid: str) -> list[dict[str, Any]]:
    store = FileStore.for_tenant(settings, uid)
    listed = []
    for sha in sorted(store.blobs()):
        entry = writer.copy_file(f"files/{sha}", store.path(sha))
        if entry["sha256"] != sha:
            raise ExportBuildError(f"stored file {sha} no longer matches its hash: the file "
                                   "store is damaged (restore it from a backup)")
        listed.append({"path": f"files/{sha}", "sha256": sha, "size": entry["size"]})
    return listed


def _snapshot(engine: Engine) -> Connection:
    """One consistent view of every table: PostgreSQL, a repeatable-read transaction;
    SQLite, one read transaction opened at once (its driver would not open one for reads)."""
    conn = engine.connect()
    if engine.dialect.name == "postgresql":
        return conn.execution_options(isolation_level="REPEATABLE READ")
    conn.exec_driver_sql("BEGIN")
    return conn


def write_tenant_archive(info: TenantInfo, settings: Settings, engine: Engine, output: Path,
                         when: datetime, *, replace: bool = False) -> dict[str, Any]:
    """Write the archive of tenant ``info`` (read through ``engine``) at ``output``.

    Built under a temporary name beside ``output`` and renamed at the end, so ``output``
    is never a partial archive; ``replace`` overwrites an existing file. Returns the
    manifest (without its member list).
    """
    partial = output.with_name(f".{output.name}.{secrets.token_hex(4)}.partial")
    writer = ArchiveWriter(partial)
    try:
        with _snapshot(engine) as conn:
            revision = migrations.current_revision(conn)
            tables = {t.name: {"member": table_member(t.name),
                               "rows": _write_table(writer, conn, t)} for t in tenant_tables()}
            _write_people(writer, conn)
            conn.rollback()
        files = _write_files(writer, settings, info.uid)
        manifest = {
            "tenant": {"slug": info.slug, "name": info.name, "uid": info.uid},
            "backend": info.backend.value,
            "schema_revision": revision,
            "created_at": when.isoformat(),
            "tables": tables,
            "files": files,
        }
        writer.finish(manifest, lambda data: crypto.sign(settings.encryption_key, data))
        os.chmod(partial, 0o600)
        if replace:
            os.replace(partial, output)
        else:
            os.link(partial, output)  # fails if output appeared meanwhile
            partial.unlink()
    except BaseException:
        writer.abandon()
        partial.unlink(missing_ok=True)
        raise
    return manifest


def read_rows(lines: IO[str], table: Table) -> Iterator[dict[str, Any]]:
    """The rows of a ``tables/<name>.json`` member, one line at a time (see module doc)."""
    head = lines.readline()
    try:
        header = json.loads(head.rstrip("\n").removesuffix('"rows": [').rstrip(", ") + "}")
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("table") != table.name \
            or not head.rstrip("\n").endswith('"rows": ['):
        raise ValueError(f"{table_member(table.name)} does not start as an export table")
    for line in lines:
        line = line.rstrip("\n")
        if line == "]}":
            if lines.read().strip():
                raise ValueError(f"{table_member(table.name)} has data after its end")
            return
        try:
            row = json.loads(line.removesuffix(","))
        except ValueError as exc:
            raise ValueError(f"{table_member(table.name)}: a row is not JSON") from exc
        if not isinstance(row, dict):
            raise ValueError(f"{table_member(table.name)}: a row is not an object")
        yield row
    raise ValueError(f"{table_member(table.name)} ends before its last row")
