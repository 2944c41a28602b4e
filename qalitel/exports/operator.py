"""A whole tenant exported by SCOQI (``qalitel tenants export``, and the closure's export),
visible to the client: every such export leaves an ``export`` entry in the tenant's
tamper-evident access log (:mod:`maintenance.audit`), naming the OS user and host that ran
it, the file's SHA-256 and size, and the reason given.

Fail closed: the archive is built under a hidden name, the entry is appended (and committed)
with its hash, and only then is the file put in place. When the entry cannot be written the
hidden file is deleted and :class:`ExportNotLoggedError` raised: no export without its entry.
"""

from __future__ import annotations

import getpass
import os
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backups.archive import file_sha256
from core import clock
from core.config import Settings
from core.db import db
from core.validation import InvalidInput, check_text, in_english
from maintenance import audit
from qalitel.exports.tenant import write_tenant_archive
from tenants.context import tenant_context
from tenants.engines import TenantInfo
from tenants.registry import Tenant

EVENT = "export"
REASON_MAX = 500
OPERATOR = "operator"  # `qalitel tenants export`
CLOSURE = "closure"  # the export built at closure for the company's administrators


class ExportReasonError(ValueError):
    """The reason is missing or not a single line of text (nothing was exported)."""


class ExportNotLoggedError(RuntimeError):
    """The access-log entry could not be written, so no export was written."""


@dataclass(frozen=True)
class LoggedExport:
    path: Path
    sha256: str
    size: int
    manifest: dict[str, Any]


def check_reason(reason: object) -> str:
    """The reason as logged (one line, 1 to 500 characters) or ExportReasonError."""
    try:
        cleaned = check_text(reason or "", REASON_MAX, multiline=False)
    except InvalidInput as exc:
        raise ExportReasonError(f"reason: {in_english(exc)}") from None
    if not cleaned:
        raise ExportReasonError("reason: say why the tenant's data is exported "
                                "(--reason TEXT); the client reads it in its access log")
    return cleaned


def who_runs() -> tuple[str, str]:
    """The OS user and host name of this process."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid {os.getuid()}"
    return user[:100], (socket.gethostname() or "unknown host")[:100]


def logged_export(settings: Settings, tenant: Tenant, output: Path, reason: object, *,
                  purpose: str = OPERATOR, replace: bool = False) -> LoggedExport:
    """Write tenant ``tenant``'s full archive at ``output`` once its access-log entry is
    committed (module docstring). Raises ExportReasonError, ExportNotLoggedError,
    FileExistsError (``output`` appeared and ``replace`` is false), and what the archive
    writer raises; in every case no file is left at ``output`` or beside it."""
    why = check_reason(reason)
    info = TenantInfo.from_row(tenant)
    tenant_id = tenant.id
    db.session.commit()  # SQLite: the log's append needs the platform write lock
    hidden = output.with_name(f".{output.name}.{secrets.token_hex(4)}.unlogged")
    try:
        with tenant_context(info) as ctx:
            manifest = write_tenant_archive(info, settings, ctx.engine, hidden, clock.now())
        sha256, size = file_sha256(hidden)
        user, host = who_runs()
        try:
            audit.append(tenant_id, EVENT, actor_kind="staff" if purpose == OPERATOR
                         else "system", actor_name=f"{user}@{host}",
                         detail={"purpose": purpose, "os_user": user, "host": host,
                                 "file": output.name, "sha256": sha256, "size": size,
                                 "reason": why})
        except (audit.AuditWriteError, ValueError) as exc:
            raise ExportNotLoggedError(f"no export written: the access-log entry could not "
                                       f"be written ({exc})") from exc
        if replace:
            os.replace(hidden, output)
        else:
            os.link(hidden, output)  # fails if output appeared meanwhile
            hidden.unlink()
    finally:
        hidden.unlink(missing_ok=True)
    return LoggedExport(output, sha256, size, manifest)
