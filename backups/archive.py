"""The archive: a tar of the database dump, the tenant's committed files (never an upload
still streaming into the file store's ``tmp/``) and, last, ``manifest.json`` listing what
was written, each member hashed while it is tarred; encrypted with age to the platform's
public recipient.

Plaintext exists only in a private staging folder while the archive is built, and is
removed before the encrypted file is handed to any target.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import shutil
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import pyrage

from backups.dump import dump_database
from backups.errors import ArchiveError, BackupConfigError
from core.config import Settings
from core.filestore import FileStore
from tenants.engines import TenantInfo

FORMAT = "qalitel-backup/1"
MANIFEST = "manifest.json"
FILES_PREFIX = "files/"
CHUNK = 1 << 20


def tenant_files_dir(settings: Settings, tenant_uid: str) -> Path:
    """The tenant's attachment folder. Stand-in until the attachments store provides
    ``tenant_files_dir(settings, tenant_uid)`` on main: switch this one function to it."""
    return settings.instance_dir / "files" / tenant_uid


def recipient(settings: Settings) -> pyrage.x25519.Recipient:
    raw = settings.backup_recipient.strip()
    if not raw:
        raise BackupConfigError("QALITEL_BACKUP_RECIPIENT is not set: give the age public key "
                                "(age1…) archives are encrypted to")
    try:
        return pyrage.x25519.Recipient.from_str(raw)
    except pyrage.RecipientError as exc:
        raise BackupConfigError(f"QALITEL_BACKUP_RECIPIENT is not an age public key "
                                f"(age1…): {exc}") from exc


def identities(settings: Settings) -> list[pyrage.x25519.Identity]:
    path = settings.backup_identity
    if path is None:
        raise BackupConfigError("QALITEL_BACKUP_IDENTITY is not set: name the age identity "
                                "file that decrypts the archives")
    try:
        lines = Path(path).read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise BackupConfigError(f"QALITEL_BACKUP_IDENTITY {path}: cannot read it") from exc
    keys = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    try:
        found = [pyrage.x25519.Identity.from_str(key) for key in keys]
    except pyrage.IdentityError as exc:
        raise BackupConfigError(f"QALITEL_BACKUP_IDENTITY {path}: not an age identity "
                                "file") from exc
    if not found:
        raise BackupConfigError(f"QALITEL_BACKUP_IDENTITY {path}: holds no identity")
    return found


def sha256_of(stream: BinaryIO) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    while chunk := stream.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def file_sha256(path: Path) -> tuple[str, int]:
    with open(path, "rb") as handle:
        return sha256_of(handle)


def _tenant_files(settings: Settings, uid: str) -> list[tuple[str, Path]]:
    """The tenant's committed files (``<2 hex>/<sha256>``), never an upload still streaming
    into the store's ``tmp/`` folder nor its lock file."""
    root = tenant_files_dir(settings, uid)
    return sorted((f"{sha[:2]}/{sha}", root / sha[:2] / sha) for sha in FileStore(root).blobs())


class _Hashing:
    """A reader that hashes what it hands out (so a member is hashed while it is tarred)."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream, self.digest = stream, hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        chunk = self.stream.read(size)
        self.digest.update(chunk)
        return chunk


def _add_hashed(tar: tarfile.TarFile, path: Path, arcname: str,
                mtime: int) -> dict[str, Any] | None:
    """Stream ``path`` into ``tar``, hashing it on the way; None when it is gone (a file
    removed between listing and tarring). A committed file never changes in place (a new
    copy of the same content replaces it by rename), so the open handle reads one whole
    version of it."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 (closed below)
    except FileNotFoundError:
        return None
    with handle:
        entry = tarfile.TarInfo(arcname)
        entry.size, entry.mtime, entry.mode = os.fstat(handle.fileno()).st_size, mtime, 0o600
        reader = _Hashing(handle)
        tar.addfile(entry, reader)  # type: ignore[arg-type]
    return {"size": entry.size, "sha256": reader.digest.hexdigest()}


@dataclass(frozen=True)
class Built:
    path: Path
    sha256: str
    size: int
    manifest: dict[str, Any]


def build(info: TenantInfo, settings: Settings, staging: Path, when: datetime) -> Built:
    """Dump, pack and encrypt one tenant into ``staging`` (a private folder of the caller's).

    Each member is hashed while it is written into the tar (one read), and the manifest,
    written last, lists what was written: what a member's hash names is what it holds."""
    to = recipient(settings)
    dump = dump_database(info, settings, staging)
    mtime = int(when.timestamp())
    listed = []
    plain = staging / "archive.tar"
    with tarfile.open(plain, "w", format=tarfile.PAX_FORMAT) as tar:
        db_entry = _add_hashed(tar, dump.path, dump.path.name, mtime)
        if db_entry is None:
            raise ArchiveError(f"the database dump {dump.path.name} vanished from staging")
        for name, path in _tenant_files(settings, info.uid):
            entry = _add_hashed(tar, path, FILES_PREFIX + name, mtime)
            if entry is not None:
                listed.append({"path": name, **entry})
        manifest = {
            "format": FORMAT,
            "tenant": {"slug": info.slug, "uid": info.uid, "name": info.name},
            "backend": info.backend.value,
            "schema_revision": dump.schema_revision,
            "created_at": when.isoformat(),
            "database": {"member": dump.path.name, "format": dump.format,
                         "size": db_entry["size"], "sha256": db_entry["sha256"],
                         "tables": dump.tables},
            "files": listed,
        }
        data = json.dumps(manifest, indent=2, sort_keys=True).encode()
        entry = tarfile.TarInfo(MANIFEST)
        entry.size, entry.mtime, entry.mode = len(data), mtime, 0o600
        tar.addfile(entry, io.BytesIO(data))
    dump.path.unlink()
    encrypted = staging / "archive.tar.age"
    with open(plain, "rb") as reader, open(encrypted, "xb") as writer:
        pyrage.encrypt_io(reader, writer, [to])
    plain.unlink()
    digest, size = file_sha256(encrypted)
    return Built(encrypted, digest, size, manifest)


@contextmanager
def _locked(path: Path, blocking: bool = True) -> Iterator[bool]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def _staging_base(settings: Settings) -> Path:
    base = settings.instance_dir / "backup-staging"
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    return base


def sweep_staging(settings: Settings) -> list[str]:
    """Remove what dead runs left in the staging folder (plaintext included): every folder
    whose lock no live process holds. Returns the names removed."""
    base = _staging_base(settings)
    removed = []
    with _locked(base / ".lock"):
        for folder in base.iterdir():
            if not folder.is_dir():
                continue
            with _locked(folder / ".lock", blocking=False) as free:
                if free:
                    shutil.rmtree(folder, ignore_errors=True)
                    removed.append(folder.name)
    return removed


def others_alive(settings: Settings, prefix: str, own: Path | None = None) -> bool:
    """Whether a live process holds a staging folder named ``prefix…`` (other than ``own``)."""
    base = _staging_base(settings)
    with _locked(base / ".lock"):
        for folder in base.iterdir():
            if folder == own or not folder.is_dir() or not folder.name.startswith(prefix):
                continue
            with _locked(folder / ".lock", blocking=False) as free:
                if not free:
                    return True
    return False


@contextmanager
def staging_folder(settings: Settings, name: str) -> Iterator[Path]:
    """A private (0700) folder under the instance, locked while in use (see
    :func:`sweep_staging`) and removed with whatever it holds."""
    base = _staging_base(settings)
    folder = base / name
    with _locked(base / ".lock"):
        folder.mkdir(mode=0o700)
        held = _locked(folder / ".lock")
        held.__enter__()
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        held.__exit__(None, None, None)


def decrypt_to(encrypted: Path, settings: Settings, folder: Path) -> dict[str, Any]:
    """Decrypt and unpack an archive into ``folder``; returns its manifest.

    Only the members a QALITEL archive has are extracted, as regular files under
    ``folder`` (tarfile's ``data`` filter refuses links, devices and escaping paths).
    """
    keys = identities(settings)
    plain = folder / "archive.tar"
    with open(encrypted, "rb") as reader, open(plain, "xb") as writer:
        try:
            pyrage.decrypt_io(reader, writer, keys)
        # pyrage reports a bad header as DecryptError, a bad or cut payload as OSError
        except (pyrage.DecryptError, OSError) as exc:
            plain.unlink(missing_ok=True)
            raise ArchiveError(f"cannot decrypt the archive (wrong key, corrupt or "
                               f"truncated): {exc}") from exc
    out = folder / "content"
    try:
        with tarfile.open(plain, "r:") as tar:
            members = tar.getmembers()
            for member in members:
                if not member.isfile() or not (member.name in (MANIFEST, "database.sqlite3",
                                                               "database.pgdump")
                                               or member.name.startswith(FILES_PREFIX)):
                    raise ArchiveError(f"unexpected archive member {member.name[:80]!r}")
            tar.extractall(out, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise ArchiveError(f"the archive is not a readable tar: {exc}") from exc
    finally:
        plain.unlink(missing_ok=True)
    try:
        manifest = json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise ArchiveError("the archive has no readable manifest") from exc
    if manifest.get("format") != FORMAT:
        raise ArchiveError(f"unknown archive format {str(manifest.get('format'))[:40]!r}")
    os.chmod(out, 0o700)
    return manifest
