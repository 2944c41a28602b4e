"""Per-tenant, content-addressed file store on the local filesystem.

Each tenant's files live in a folder of their own, ``<instance>/files/<tenant uid>/``, one
file per content, named by its SHA-256: ``<sha256[:2]>/<sha256>``. Bytes are first written
under a temporary name in ``tmp/`` (hashed and counted while they stream, fsynced), then
renamed into place, so a reader never sees a partial file. The store knows nothing of the
rows that refer to its files: callers write the file first and the row after, and remove a
file only once no row refers to it (:meth:`FileStore.unreferenced`).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from core.config import Settings

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_UID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_CHUNK = 1 << 16
TMP = "tmp"
LOCK = ".lock"


class TooLarge(ValueError):
    """The stream holds more bytes than allowed (nothing is kept)."""


def files_root(settings: Settings) -> Path:
    return settings.instance_dir / "files"


def tenant_files_dir(settings: Settings, tenant_uid: str) -> Path:
    """The folder holding every file of one tenant (the backup engine archives it whole)."""
    if not _UID.fullmatch(tenant_uid):
        raise ValueError(f"not a tenant uid: {tenant_uid!r}")
    return files_root(settings) / tenant_uid


def remove_tenant_files(settings: Settings, tenant_uid: str) -> None:
    """Delete a tenant's folder and everything in it (a tenant being destroyed)."""
    folder = tenant_files_dir(settings, tenant_uid)
    if folder.exists():
        shutil.rmtree(folder)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Staged:
    """Bytes written under a temporary name, not yet in the store."""

    path: Path
    sha256: str
    size: int


class FileStore:
    """The files of one tenant."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def for_tenant(cls, settings: Settings, tenant_uid: str) -> FileStore:
        return cls(tenant_files_dir(settings, tenant_uid))

    def path(self, sha256: str) -> Path:
        if not _SHA256.fullmatch(sha256):
            raise ValueError("not a SHA-256 hex digest")
        return self.root / sha256[:2] / sha256

    def stage(self, stream: BinaryIO, max_bytes: int) -> Staged:
        """Copy ``stream`` to a temporary file, hashing it; :class:`TooLarge` past
        ``max_bytes`` (the temporary file is removed)."""
        tmp_dir = self.root / TMP
        tmp_dir.mkdir(parents=True, exist_ok=True)
        path = tmp_dir / f"{uuid.uuid4().hex}.part"
        digest = hashlib.sha256()
        size = 0
        try:
            with path.open("xb") as out:
                while chunk := stream.read(_CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise TooLarge(f"more than {max_bytes} bytes")
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return Staged(path=path, sha256=digest.hexdigest(), size=size)

    def discard(self, staged: Staged) -> None:
        staged.path.unlink(missing_ok=True)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise publishing and removing files of this tenant (across processes)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / LOCK).open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def commit(self, staged: Staged) -> Path:
        """Move staged bytes into place under their hash. The same content already stored
        is replaced by the new copy: its time is now, so a cleanup running within the grace
        period leaves it alone (see :meth:`remove`)."""
        final = self.path(staged.sha256)
        final.parent.mkdir(parents=True, exist_ok=True)
        with self._locked():
            os.replace(staged.path, final)
        _fsync_dir(final.parent)
        return final

    def blobs(self) -> Iterator[str]:
        """The hashes of every stored file."""
        if not self.root.is_dir():
            return
        for sub in self.root.iterdir():
            if sub.name == TMP or not sub.is_dir():
                continue
            for entry in sub.iterdir():
                if _SHA256.fullmatch(entry.name) and entry.name[:2] == sub.name:
                    yield entry.name

    def remove(self, sha256: str, *, older_than_s: float = 0.0) -> bool:
        """Remove one stored file, unless it was written or refreshed in the last
        ``older_than_s`` seconds (an upload of the same content may be under way)."""
        path = self.path(sha256)
        with self._locked():
            try:
                if older_than_s and time.time() - path.stat().st_mtime < older_than_s:
                    return False
                path.unlink()
            except FileNotFoundError:
                return False
        return True

    def unreferenced(self, referenced: Iterable[str], *, older_than_s: float) -> list[str]:
        """Remove the stored files no row refers to and the temporary files left behind,
        older than ``older_than_s`` seconds; returns the hashes removed."""
        keep = set(referenced)
        removed = [sha for sha in list(self.blobs())
                   if sha not in keep and self.remove(sha, older_than_s=older_than_s)]
        tmp_dir = self.root / TMP
        if tmp_dir.is_dir():
            cutoff = time.time() - older_than_s
            for entry in tmp_dir.iterdir():
                try:
                    if entry.stat().st_mtime <= cutoff:
                        entry.unlink()
                except FileNotFoundError:
                    continue
        return removed
