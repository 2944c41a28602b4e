"""Backup health in the staff console.

The backup catalogue belongs to ``backups``, which maintenance may not import (the two are
sibling layers). The app registers, with :func:`provide_backup_health`, a function that
reports on the tenants it is given; without one (or when it fails) the console shows no
backup column data and still works.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from core.db import db

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RecentBackup:
    id: int
    started_at: datetime
    status: str  # the catalogue's: running, complete, partial, failed, pruned
    size: int | None
    copies_ok: int
    copies: int
    verified: str | None  # "deep ok", "deep failed", "checksums ok", "checksums failed"
    error: str | None


@dataclass(frozen=True)
class BackupHealth:
    last_good_at: datetime | None
    age_hours: float | None
    last_status: str | None
    last_error: str | None
    failures: int  # failed or partial runs since the last good backup
    overdue: bool  # no good backup for 26 hours (or never)
    recent: list[RecentBackup] = field(default_factory=list)


#: Given tenant slugs and how many recent backups to list for each (0: none), the health of
#: those of them that are backed up (live tenants), by slug.
HealthReporter = Callable[[Sequence[str], int], dict[str, BackupHealth]]
_reporters: list[HealthReporter] = []


def provide_backup_health(reporter: HealthReporter | None) -> None:
    """Register the app's reporter (the last wins); None removes it."""
    _reporters[:] = [reporter] if reporter is not None else []


def report(slugs: Sequence[str], recent: int = 0) -> dict[str, BackupHealth] | None:
    """The health of ``slugs`` by slug, or None when nothing can tell (no reporter, or it
    failed: logged, the console is drawn without it)."""
    if not _reporters or not slugs:
        return {} if _reporters else None
    try:
        return _reporters[0](slugs, recent)
    except Exception:
        log.warning("backup health unavailable", exc_info=True)
        db.session.rollback()
        return None
