"""The export archive: a ZIP whose ``manifest.json`` names every other member with its
SHA-256 and size, and ``manifest.sig`` signs the manifest (the platform's Ed25519 key,
:mod:`core.crypto`, over its canonical JSON): a consistent forgery (a member changed and
re-hashed) no longer matches the signature. Written member by member as the data streams
(nothing held whole in memory); read back only after every name, size and ratio is checked
against the manifest, each member's hash checked as it streams.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

FORMAT = "qalitel-export/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
SIGNATURE_MAX = 4096
CHUNK = 1 << 20
MEMBER_NAME = re.compile(r"(tables/[a-z][a-z0-9_]{0,62}\.json|people/[a-z][a-z0-9_]{0,62}\.csv"
                         r"|files/[0-9a-f]{64})")


class ExportArchiveError(ValueError):
    """An archive refused on import: not ours, tampered with, or beyond the limits."""


@dataclass(frozen=True)
class Limits:
    """What an archive given to ``import`` may hold (a zip bomb stops at these)."""

    total_bytes: int = 64 << 30  # uncompressed, every member together
    members: int = 1_000_000
    manifest_bytes: int = 64 << 20
    #: Uncompressed / compressed, for members over 1 MiB. Deflate tops out near 1032:1;
    #: JSON rows compress about 10:1, photos and PDFs about 1:1.
    ratio: int = 200


class _Hashing(io.RawIOBase):
    """A write-only stream passing bytes on to ``sink`` while hashing and counting them."""

    def __init__(self, sink: IO[bytes]) -> None:
        self.sink, self.digest, self.size = sink, hashlib.sha256(), 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.digest.update(view)
        self.sink.write(view)
        self.size += len(view)
        return len(view)


def canonical(manifest: dict[str, Any]) -> bytes:
    """The bytes the signature covers: the manifest as sorted, compact JSON (so a reader
    re-serialising it does not break the signature, a change of any value does)."""
    return json.dumps(manifest, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode()


class ArchiveWriter:
    """Writes an archive at ``path`` (a new file); :meth:`finish` adds the manifest."""

    def __init__(self, path: Path) -> None:
        self.zip = zipfile.ZipFile(path, "x", zipfile.ZIP_DEFLATED, allowZip64=True,
                                   compresslevel=6)
        self.members: dict[str, dict[str, Any]] = {}

    @contextmanager
    def binary(self, name: str, *, stored: bool = False) -> Iterator[_Hashing]:
        """A member written as it streams; ``stored``: not compressed (photos and PDFs
        are already, and deflating them again costs time for nothing)."""
        if not MEMBER_NAME.fullmatch(name) or name in self.members:
            raise ValueError(f"bad member name {name!r}")
        info = zipfile.ZipInfo(name, date_time=time.gmtime()[:6])
        info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
        info.external_attr = 0o600 << 16
        with self.zip.open(info, "w", force_zip64=True) as raw:
            stream = _Hashing(raw)
            yield stream
        self.members[name] = {"sha256": stream.digest.hexdigest(), "size": stream.size}

    @contextmanager
    def text(self, name: str, encoding: str = "utf-8") -> Iterator[IO[str]]:
        with self.binary(name) as raw:
            buffered = io.BufferedWriter(raw, CHUNK)
            text = io.TextIOWrapper(buffered, encoding=encoding, newline="")
            yield text
            text.flush()
            text.detach()
            buffered.flush()

    def copy_file(self, name: str, source: Path) -> dict[str, Any]:
        with self.binary(name, stored=True) as out, open(source, "rb") as handle:
            while chunk := handle.read(CHUNK):
                out.write(chunk)
        return self.members[name]

    def finish(self, manifest: dict[str, Any], sign: Callable[[bytes], str]) -> None:
        """Write the manifest, and its signature by ``sign`` (bytes → base64 Ed25519)."""
        document = {**manifest, "format": FORMAT, "members": dict(sorted(self.members.items()))}
        self.zip.writestr(MANIFEST, json.dumps(document, indent=2, ensure_ascii=False))
        self.zip.writestr(SIGNATURE, json.dumps({
            "algorithm": "ed25519", "over": "canonical JSON of manifest.json (sorted keys, "
            "no spaces)", "value": sign(canonical(document))}, indent=2))
        self.zip.close()

    def abandon(self) -> None:
        self.zip.close()


class _Checked(io.RawIOBase):
    """A member as it streams out of the ZIP: never more than its declared size, and its
    SHA-256 compared with the manifest's at the end."""

    def __init__(self, name: str, raw: IO[bytes], size: int, sha256: str) -> None:
        self.name, self.raw, self.expected, self.sha256 = name, raw, size, sha256
        self.digest, self.size, self.done = hashlib.sha256(), 0, False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            data = self.raw.read(min(len(buffer), self.expected - self.size + 1))
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
            raise ExportArchiveError(f"member {self.name} is damaged: {exc}") from exc
        self.size += len(data)
        if self.size > self.expected:
            raise ExportArchiveError(f"member {self.name} holds more than the "
                                     f"{self.expected} bytes its manifest says")
        self.digest.update(data)
        if not data:
            self._check()
        buffer[:len(data)] = data
        return len(data)

    def _check(self) -> None:
        if self.done:
            return
        self.done = True
        if self.size != self.expected or self.digest.hexdigest() != self.sha256:
            raise ExportArchiveError(f"member {self.name} differs from its manifest "
                                     "(SHA-256 or size): the archive was altered")

    def drain(self) -> None:
        """Read what is left and check the hash (a reader that stopped early)."""
        while self.read(CHUNK):
            pass
        self._check()


def _refuse(message: str) -> ExportArchiveError:
    return ExportArchiveError(message)


class ArchiveReader:
    """An archive opened for import: constructed only when its structure checks out."""

    def __init__(self, path: Path, limits: Limits | None = None) -> None:
        limits = limits or Limits()
        if not path.is_file():
            raise _refuse(f"{path}: no such file")
        try:
            self.zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise _refuse(f"{path.name} is not a ZIP archive ({exc})") from exc
        try:
            self.manifest = self._check(limits)
        except BaseException:
            self.zip.close()
            raise

    def _check(self, limits: Limits) -> dict[str, Any]:
        infos = self.zip.infolist()
        if len(infos) > limits.members:
            raise _refuse(f"the archive has {len(infos)} members, more than {limits.members}")
        by_name: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            name = info.filename
            if (name.startswith(("/", "\\")) or "\\" in name or ".." in name.split("/")
                    or ":" in name):
                raise _refuse(f"unsafe member name {name[:80]!r} (absolute path or '..')")
            if name not in (MANIFEST, SIGNATURE) and not MEMBER_NAME.fullmatch(name):
                raise _refuse(f"unexpected member {name[:80]!r}")
            if name in by_name:
                raise _refuse(f"member {name[:80]!r} appears twice")
            if info.flag_bits & 0x1:
                raise _refuse(f"member {name[:80]!r} is encrypted: not a QALITEL export")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise _refuse(f"member {name[:80]!r} uses an unsupported compression")
            by_name[name] = info
        self.signature = self._signature(by_name.pop(SIGNATURE, None))
        info = by_name.pop(MANIFEST, None)
        if info is None:
            raise _refuse("the archive has no manifest.json: not a QALITEL export")
        if info.file_size > limits.manifest_bytes:
            raise _refuse("manifest.json is larger than any real export's")
        try:
            with self.zip.open(info) as handle:
                manifest = json.loads(handle.read(limits.manifest_bytes + 1))
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            raise _refuse(f"manifest.json is not readable JSON ({exc})") from exc
        found = manifest.get("format") if isinstance(manifest, dict) else None
        if found != FORMAT:
            raise _refuse(f"not a QALITEL export (format {str(found)[:40]!r})")
        members = manifest.get("members")
        if not isinstance(members, dict):
            raise _refuse("the manifest lists no members")
        missing = sorted(set(members) - set(by_name))
        extra = sorted(set(by_name) - set(members))
        if missing:
            raise _refuse(f"member(s) missing from the archive: {', '.join(missing[:5])}")
        if extra:
            raise _refuse(f"member(s) the manifest does not list: {', '.join(extra[:5])}")
        total = 0
        for name, item in by_name.items():
            entry = members[name]
            if (not isinstance(entry, dict) or not isinstance(entry.get("size"), int)
                    or not isinstance(entry.get("sha256"), str)):
                raise _refuse(f"the manifest entry of {name} is malformed")
            if item.file_size != entry["size"]:
                raise _refuse(f"member {name} is {item.file_size} bytes, its manifest says "
                              f"{entry['size']}: the archive was altered")
            total += item.file_size
            ratio = item.file_size // max(item.compress_size, 1)
            if item.file_size > 1 << 20 and ratio > limits.ratio:
                raise _refuse(f"member {name} expands {ratio} times: refused as a zip bomb")
        if total > limits.total_bytes:
            raise _refuse(f"the archive expands to {total} bytes, more than the "
                          f"{limits.total_bytes} allowed")
        return manifest

    def _signature(self, info: zipfile.ZipInfo | None) -> str | None:
        """The base64 value of ``manifest.sig``; None without one, or when unreadable."""
        if info is None or info.file_size > SIGNATURE_MAX:
            return None
        try:
            with self.zip.open(info) as handle:
                value = json.loads(handle.read(SIGNATURE_MAX + 1)).get("value")
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, AttributeError):
            return None
        return value if isinstance(value, str) else None

    @contextmanager
    def binary(self, name: str) -> Iterator[_Checked]:
        entry = self.manifest["members"][name]
        with self.zip.open(name) as raw:
            checked = _Checked(name, raw, entry["size"], entry["sha256"])
            yield checked
            checked.drain()

    @contextmanager
    def lines(self, name: str, encoding: str = "utf-8") -> Iterator[IO[str]]:
        with self.binary(name) as checked:
            text = io.TextIOWrapper(io.BufferedReader(checked, CHUNK), encoding=encoding,
                                    newline="")
            try:
                yield text
            except UnicodeDecodeError as exc:
                raise _refuse(f"member {name} is not UTF-8 text") from exc
            text.detach()

    def verify(self) -> None:
        """Read every member through its hash check (before anything is written)."""
        for name in self.manifest["members"]:
            with self.binary(name):
                pass

    def close(self) -> None:
        self.zip.close()
