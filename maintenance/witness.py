"""The access log's witness: append-only files outside the platform database.

After each committed append, one line ``{"seq": n, "hash": h}`` goes to
``<QALITEL_AUDIT_WITNESS_DIR>/<tenant uid>.jsonl`` (opened ``O_APPEND``, never rewritten); a
purge adds ``{"purged": n, "hash": h}``. Verification then requires every witnessed entry to
still be in the chain with the witnessed hash: cutting the log and putting an older genuine
head back (a rollback), or rewriting and re-sealing it, contradicts the witness even though
the chain and its seal agree. Someone who can also truncate or edit these files (make them
``chattr +a``, keep the folder on another disk or host) is beyond what the witness sees.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from core import config

UID_RE = re.compile(r"^[0-9a-f-]{1,36}$")


class WitnessError(OSError):
    """The witness could not be written."""


@dataclass
class Witnessed:
    """What a tenant's witness file says: entry hashes by seq, and any purge."""

    entries: dict[int, str] = field(default_factory=dict)
    purged: tuple[int, str] | None = None
    unreadable: list[int] = field(default_factory=list)
    #: seqs witnessed with two different hashes: the log was rolled back and written again.
    conflicts: list[int] = field(default_factory=list)

    @property
    def highest(self) -> int:
        return max(self.entries, default=0)


def path(tenant_uid: str) -> Path:
    if not UID_RE.fullmatch(tenant_uid):
        raise ValueError("not a tenant uid")
    return config.settings().witness_dir / f"{tenant_uid}.jsonl"


def _write(tenant_uid: str, record: dict[str, object]) -> None:
    target = path(tenant_uid)
    line = (json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n").encode()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            if os.write(fd, line) != len(line):
                raise WitnessError(f"short write to {target}")
        finally:
            os.close(fd)
    except OSError as exc:
        raise WitnessError(f"access-log witness {target} not written: {exc}") from exc


def entry(tenant_uid: str, seq: int, digest: str) -> None:
    _write(tenant_uid, {"seq": seq, "hash": digest})


def purge(tenant_uid: str, count: int, last_hash: str) -> None:
    _write(tenant_uid, {"purged": count, "hash": last_hash})


def read(tenant_uid: str) -> Witnessed:
    """The tenant's witness (empty when there is no file)."""
    seen = Witnessed()
    try:
        handle = path(tenant_uid).open("rb")
    except FileNotFoundError:
        return seen
    except OSError:
        seen.unreadable.append(0)  # line 0: the file itself
        return seen
    with handle:
        for number, raw in enumerate(handle, start=1):
            try:
                record = json.loads(raw)
                if "purged" in record:
                    seen.purged = (int(record["purged"]), str(record["hash"]))
                else:
                    seq, digest = int(record["seq"]), str(record["hash"])
                    if seen.entries.setdefault(seq, digest) != digest:
                        seen.conflicts.append(seq)
            except (ValueError, KeyError, TypeError):
                seen.unreadable.append(number)
    return seen
