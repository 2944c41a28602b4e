"""Where archives go: folders (one per medium) and, optionally, an S3-compatible bucket.

:func:`parse_targets` turns ``QALITEL_BACKUP_TARGETS`` into targets or refuses it whole.
A folder target writes under a temporary name, fsyncs the file and its folder, then renames:
a reader sees a whole archive or none. A target folder is never created (a missing one is
an unmounted medium, and writing beside it would fill the wrong disk); only the per-tenant
folder inside it is.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from backups.errors import BackupConfigError, TargetError
from core.config import Settings

MIN_FOLDERS = 2
_S3_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_S3_PREFIX = re.compile(r"^[A-Za-z0-9._/-]{0,200}$")
PARTIAL_SUFFIX = ".partial"


class Target(Protocol):
    name: str

    def put(self, key: str, source: Path) -> None: ...

    def open(self, key: str) -> contextlib.AbstractContextManager[BinaryIO]: ...

    def size(self, key: str) -> int | None: ...

    def delete(self, key: str) -> None: ...


def _describe(exc: OSError) -> str:
    return exc.strerror or str(exc)


class FolderTarget:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.name = str(root)

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*key.split("/"))

    def put(self, key: str, source: Path) -> None:
        """Copy ``source`` to ``key`` atomically; on any failure nothing stays behind."""
        if not self.root.is_dir():
            raise TargetError(f"{self.name}: target folder is missing (medium not mounted?)")
        dest = self._path(key)
        created = [p for p in reversed(dest.relative_to(self.root).parents)
                   if p != Path(".") and not (self.root / p).exists()]
        temp = dest.with_name(f".{dest.name}.{secrets.token_hex(6)}{PARTIAL_SUFFIX}")
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            with open(source, "rb") as reader, open(temp, "xb") as writer:
                shutil.copyfileobj(reader, writer, 1 << 20)
                writer.flush()
                os.fsync(writer.fileno())
            os.replace(temp, dest)
            # The new name's folder, and the parent of every folder made for it.
            for folder in {dest.parent, *((self.root / p).parent for p in created)}:
                _fsync_dir(folder)
        except OSError as exc:
            temp.unlink(missing_ok=True)
            for folder in reversed(created):
                with contextlib.suppress(OSError):
                    (self.root / folder).rmdir()
            raise TargetError(f"{self.name}: {_describe(exc)}") from exc
        except BaseException:
            temp.unlink(missing_ok=True)
            raise

    @contextlib.contextmanager
    def open(self, key: str) -> Iterator[BinaryIO]:
        try:
            handle = open(self._path(key), "rb")  # noqa: SIM115 (closed below)
        except OSError as exc:
            raise TargetError(f"{self.name}: {_describe(exc)}") from exc
        with handle:
            yield handle

    def size(self, key: str) -> int | None:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise TargetError(f"{self.name}: {_describe(exc)}") from exc

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink(missing_ok=True)
        except OSError as exc:
            raise TargetError(f"{self.name}: {_describe(exc)}") from exc

    def partials(self) -> list[tuple[str, Path]]:
        """The temporary files (``<tenant uid>/.<name>.<random>.partial``) of copies being
        written or killed mid-write, with the name of their tenant folder. A missing target
        folder (an unmounted medium) holds none."""
        if not self.root.is_dir():
            return []
        try:
            return [(folder.name, path) for folder in sorted(self.root.iterdir())
                    if folder.is_dir() and not folder.is_symlink()
                    for path in sorted(folder.glob(f".*{PARTIAL_SUFFIX}"))
                    if not path.is_symlink()]
        except OSError as exc:
            raise TargetError(f"{self.name}: {_describe(exc)}") from exc


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def parse_targets(settings: Settings) -> list[Target]:
    """The configured targets, or :class:`BackupConfigError` naming every problem."""
    from backups.s3 import S3Target

    raw = settings.backup_targets
    problems: list[str] = []
    targets: list[Target] = []
    seen: set[str] = set()
    for entry in raw:
        if any(ord(c) < 32 or ord(c) == 127 for c in entry):
            problems.append(f"{entry!r}: control characters")
            continue
        if entry.startswith("s3://"):
            bucket, _, prefix = entry[5:].partition("/")
            prefix = prefix.strip("/")
            if not _S3_BUCKET.fullmatch(bucket) or not _S3_PREFIX.fullmatch(prefix) \
                    or ".." in prefix.split("/"):
                problems.append(f"{entry!r}: not s3://bucket/prefix (lowercase bucket name)")
                continue
            target: Target = S3Target(bucket, prefix, settings.backup_s3_endpoint)
        elif "://" in entry:
            problems.append(f"{entry!r}: only folders and s3:// targets are supported")
            continue
        else:
            path = Path(entry)
            if not path.is_absolute() or ".." in path.parts:
                problems.append(f"{entry!r}: a folder target must be an absolute path")
                continue
            if path.exists() and not path.is_dir():
                problems.append(f"{entry!r}: is a file, not a folder")
                continue
            target = FolderTarget(Path(os.path.normpath(path)))
        if target.name in seen:
            problems.append(f"{entry!r}: listed twice")
            continue
        seen.add(target.name)
        targets.append(target)
    folders = sum(isinstance(t, FolderTarget) for t in targets)
    if not problems and folders < MIN_FOLDERS:
        problems.append(f"give at least {MIN_FOLDERS} folders on different media "
                        f"(has {folders})")
    if problems:
        raise BackupConfigError("QALITEL_BACKUP_TARGETS: " + "; ".join(problems))
    return targets


def same_device(targets: list[Target]) -> list[tuple[str, str]]:
    """Pairs of existing folder targets on one filesystem (not two media: a warning)."""
    devices: dict[int, str] = {}
    pairs: list[tuple[str, str]] = []
    for target in targets:
        if isinstance(target, FolderTarget) and target.root.is_dir():
            device = target.root.stat().st_dev
            if device in devices:
                pairs.append((devices[device], target.name))
            devices.setdefault(device, target.name)
    return pairs
