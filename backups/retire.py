"""``backup retire-target NAME``: a target taken out of ``QALITEL_BACKUP_TARGETS`` for good (a
dead medium replaced, a bucket given up).

Its copy rows become ``pruned`` with the note :data:`NOTE` and the time, so prune no longer
waits for copies it can never delete, and the history shows them gone. Nothing is deleted on
the target itself (it is gone, or the operator wipes it). A backup that was ``complete``
with a copy there becomes ``partial`` (the next run of its tenant copies it to the targets
now configured, within the retention window), or ``failed`` when that was its last good copy.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from sqlalchemy import select

from backups.errors import BackupConfigError
from backups.models import Backup, BackupCopy, BackupStatus, CopyStatus
from core import clock
from core.config import Settings
from core.db import db

NOTE = "retired target: no longer configured, its copies counted as gone"
NAME_MAX = 1000


class RetireRefused(ValueError):
    """The name is malformed, still configured, or names no target of the catalogue."""


@dataclass
class Retired:
    target: str
    copies: list[int] = field(default_factory=list)  # backup ids whose copy there is gone
    partial: list[int] = field(default_factory=list)  # complete backups now partial
    failed: list[int] = field(default_factory=list)  # backups left without a good copy


def target_name(entry: str) -> str:
    """``entry`` as the catalogue names its target (the name ``parse_targets`` gives it)."""
    if not entry or len(entry) > NAME_MAX or any(ord(c) < 32 or ord(c) == 127 for c in entry):
        raise RetireRefused(f"{entry[:60]!r} is not a target name")
    if entry.startswith("s3://"):
        bucket, _, prefix = entry[5:].partition("/")
        prefix = prefix.strip("/")
        if not bucket:
            raise RetireRefused(f"{entry[:60]!r} is not s3://bucket/prefix")
        return f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
    if "://" in entry or not os.path.isabs(entry):
        raise RetireRefused(f"{entry[:60]!r}: give the folder (absolute path) or s3:// target "
                            "as QALITEL_BACKUP_TARGETS named it")
    return os.path.normpath(entry)


def _configured(settings: Settings) -> set[str]:
    from backups.targets import parse_targets

    try:
        return {t.name for t in parse_targets(settings)}
    except BackupConfigError:  # still refuse any entry that is listed, however malformed
        names = set()
        for entry in settings.backup_targets:
            try:
                names.add(target_name(entry))
            except RetireRefused:
                names.add(entry)
        return names


def _settle(backup: Backup) -> str | None:
    """``backup``'s new status once a copy is gone: "partial", "failed", or None (same)."""
    if backup.status not in (BackupStatus.COMPLETE, BackupStatus.PARTIAL):
        return None  # running (its run settles it), failed, or being pruned
    if any(c.status is CopyStatus.OK for c in backup.copies):
        if backup.status is BackupStatus.PARTIAL:
            return None
        backup.status = BackupStatus.PARTIAL
    else:
        backup.status = BackupStatus.FAILED
        backup.error = f"its last good copy was on a retired target ({NOTE})"
    return backup.status.value


def retire_target(settings: Settings, entry: str) -> Retired:
    """Mark every copy on the target ``entry`` gone; flushes (the command commits)."""
    name = target_name(entry)
    if name in _configured(settings):
        raise RetireRefused(f"{name} is still in QALITEL_BACKUP_TARGETS: take it out first")
    rows = list(db.session.execute(
        select(BackupCopy).where(BackupCopy.target == name).order_by(BackupCopy.backup_id)
    ).scalars())
    if not rows:
        raise RetireRefused(f"the backup catalogue has no copy on {name}")
    done = Retired(name)
    now = clock.now()
    for row in rows:
        if row.status is CopyStatus.PRUNED:
            continue
        row.status, row.pruned_at, row.error = CopyStatus.PRUNED, now, NOTE
        done.copies.append(row.backup_id)
        settled = _settle(row.backup)
        if settled == BackupStatus.PARTIAL.value:
            done.partial.append(row.backup_id)
        elif settled == BackupStatus.FAILED.value:
            done.failed.append(row.backup_id)
    db.session.flush()
    return done
