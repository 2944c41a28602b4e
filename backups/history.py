"""A tenant's backup history as its administrators read it: one entry per archive, the state
of its copy on each target, and how it was last verified.

Targets are named by their place in ``QALITEL_BACKUP_TARGETS`` ("medium 1", "medium 2",
"S3"), never by the server's folder paths or bucket names: those are the host's business.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from backups.errors import BackupConfigError
from backups.models import Backup, BackupCopy, BackupStatus, CopyStatus
from backups.status import aware
from core.config import Settings
from core.db import db
from core.pagination import DEFAULT_PAGE_SIZE, Page, paginate


@dataclass(frozen=True)
class TargetLabel:
    """A target as clients see it: its kind (``folder``, ``s3``, or ``former`` for one no
    longer configured) and its number among the targets of that kind (1-based)."""

    kind: str
    number: int
    of: int  # how many targets of that kind there are


@dataclass(frozen=True)
class CopyState:
    target: TargetLabel
    state: str  # "ok", "damaged" (a checksum check found it altered or missing), "failed",
    #             "pruned", or "absent" (never written there)
    at: datetime | None = None


@dataclass(frozen=True)
class Verification:
    kind: str  # "deep_ok", "deep_failed", "checked_ok", "check_failed"
    at: datetime


@dataclass(frozen=True)
class Entry:
    id: int
    started_at: datetime
    status: BackupStatus
    size: int | None
    copies: list[CopyState] = field(default_factory=list)
    verifications: list[Verification] = field(default_factory=list)
    pruned_at: datetime | None = None


def target_names(settings: Settings) -> list[str]:
    """The configured targets' names as the catalogue records them (the raw entries when the
    configuration is refused, so a page can still be drawn)."""
    from backups.targets import parse_targets

    try:
        return [t.name for t in parse_targets(settings)]
    except BackupConfigError:
        return list(settings.backup_targets)


def media_count(settings: Settings) -> int:
    return len(settings.backup_targets)


def labels(names: list[str]) -> dict[str, TargetLabel]:
    kinds = ["s3" if name.startswith("s3://") else "folder" for name in names]
    totals = {kind: kinds.count(kind) for kind in kinds}
    found: dict[str, TargetLabel] = {}
    seen: dict[str, int] = {}
    for name, kind in zip(names, kinds, strict=True):
        seen[kind] = seen.get(kind, 0) + 1
        found[name] = TargetLabel(kind, seen[kind], totals[kind])
    return found


def _copy_state(row: BackupCopy | None, label: TargetLabel) -> CopyState:
    if row is None:
        return CopyState(label, "absent")
    if row.status is CopyStatus.PRUNED:
        return CopyState(label, "pruned", aware(row.pruned_at) if row.pruned_at else None)
    if row.status is CopyStatus.FAILED:
        return CopyState(label, "failed", aware(row.written_at) if row.written_at else None)
    if row.checked_at is not None and row.check_result != "ok":
        return CopyState(label, "damaged", aware(row.checked_at))
    return CopyState(label, "ok", aware(row.written_at) if row.written_at else None)


def _verifications(backup: Backup) -> list[Verification]:
    found = []
    if backup.deep_verified_at is not None:
        found.append(Verification("deep_ok" if backup.deep_result == "ok" else "deep_failed",
                                  aware(backup.deep_verified_at)))
    checked = [c for c in backup.copies
               if c.checked_at is not None and c.status is CopyStatus.OK]
    if checked:
        ok = all(c.check_result == "ok" for c in checked)
        found.append(Verification("checked_ok" if ok else "check_failed",
                                  max(aware(c.checked_at) for c in checked if c.checked_at)))
    return found


def entry(backup: Backup, configured: dict[str, TargetLabel]) -> Entry:
    """What the history shows of one backup: a state on every configured target, then on any
    target it was written to that is no longer configured."""
    rows = {c.target: c for c in backup.copies}
    copies = [_copy_state(rows.get(name), label) for name, label in configured.items()]
    former = [name for name in rows if name not in configured]
    copies += [_copy_state(rows[name], TargetLabel("former", i, len(former)))
               for i, name in enumerate(former, start=1)]
    return Entry(id=backup.id, started_at=aware(backup.started_at), status=backup.status,
                 size=backup.size, copies=copies, verifications=_verifications(backup),
                 pruned_at=aware(backup.pruned_at) if backup.pruned_at else None)


def history_page(settings: Settings, tenant_uid: str, page: int,
                 page_size: int = DEFAULT_PAGE_SIZE) -> Page:
    """One page of ``tenant_uid``'s backups, newest first, as :class:`Entry` rows; only that
    tenant's rows, whatever the page asked."""
    mine = Backup.tenant_uid == tenant_uid
    rows = (select(Backup).where(mine).options(selectinload(Backup.copies))
            .order_by(Backup.started_at.desc(), Backup.id.desc()))
    found = paginate(db.session, rows, select(func.count()).select_from(Backup).where(mine),
                     page, page_size, scalars=True)
    configured = labels(target_names(settings))
    return dataclasses.replace(found, rows=[entry(b, configured) for b in found.rows])


SUMMARIES = {"deep_ok": "deep ok", "deep_failed": "deep failed", "checked_ok": "checksums ok",
             "check_failed": "checksums failed"}


def verification_summary(backup: Backup) -> str | None:
    """The latest verification of ``backup`` in a few words (for staff), None if never."""
    found = sorted(_verifications(backup), key=lambda v: v.at, reverse=True)
    return SUMMARIES[found[0].kind] if found else None
