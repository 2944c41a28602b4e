"""A check of a ``pg_dump --format=custom`` archive, read in process: the header, the table
of contents and every data block the table of contents announces, each walked chunk by chunk
to its end marker (and inflated when zlib-compressed), with the file ending right after the
last block. A dump cut anywhere, or with a block missing or damaged, is refused.

This is stricter than ``pg_restore --list``, which reads only the header and the table of
contents (a dump truncated inside its data passes it), and costs no process. The layout is
PostgreSQL's ``pg_backup_archiver.c`` / ``pg_backup_custom.c`` (archive versions 1.12–1.16,
PostgreSQL 11–17); an unknown version is refused, never guessed at.

While inflating, the rows of each table's ``COPY`` data are counted (one line per row in
``COPY``'s text format), so the counts describe exactly what the dump holds.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from pathlib import Path

from backups.errors import BackupError

MAGIC = b"PGDMP"
FORMAT_CUSTOM = 1
BLK_DATA, BLK_BLOBS = 1, 3
POS_NOT_SET, POS_SET, NO_DATA = 1, 2, 3
OLDEST, NEWEST = (1, 12), (1, 16)
COMPRESS_NONE, COMPRESS_GZIP = 0, 1
COPY_END = b"\\.\n\n\n"  # pg_dump's end of a table's COPY data


class DumpFormatError(BackupError):
    """The file is not a complete custom-format archive."""


@dataclass
class Entry:
    dump_id: int
    desc: str
    namespace: str | None
    tag: str | None
    data_state: int
    offset: int
    copy_stmt: str | None = None


@dataclass
class Checked:
    """What the check found: per ``TABLE DATA`` entry (schema, table), its rows when the
    data could be inflated here (``None`` for lz4/zstd archives)."""

    version: tuple[int, int, int]
    entries: int
    rows: dict[tuple[str | None, str | None], int | None] = field(default_factory=dict)
    kept: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # table: COPY, data

    def table(self, name: str) -> list[dict[str, str | None]]:
        """The rows of a table asked for with ``keep`` (values as text, ``None`` for null)."""
        statement, data = self.kept[name]
        inside = statement[statement.index("(") + 1:statement.rindex(") FROM stdin")]
        columns = [c.strip().strip('"') for c in inside.split(",")]
        lines = data[:-len(COPY_END)].decode().split("\n")[:-1]
        return [dict(zip(columns, map(_copy_value, line.split("\t")), strict=True))
                for line in lines]


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0
        self.int_size = self.off_size = 4

    def take(self, count: int) -> bytes:
        end = self.pos + count
        if count < 0 or end > len(self.data):
            raise DumpFormatError(f"the dump ends early (at byte {len(self.data)}, "
                                  f"{end - len(self.data)} more expected)")
        chunk = self.data[self.pos:end]
        self.pos = end
        return chunk

    def byte(self) -> int:
        return self.take(1)[0]

    def _short(self, end: int) -> DumpFormatError:
        return DumpFormatError(f"the dump ends early (at byte {len(self.data)}, "
                               f"{end - len(self.data)} more expected)")

    def int(self) -> int:
        data, pos = self.data, self.pos
        end = pos + 1 + self.int_size
        if end > len(data):
            raise self._short(end)
        value = int.from_bytes(data[pos + 1:end], "little")
        self.pos = end
        return -value if data[pos] else value

    def str(self) -> str | None:
        length = self.int()
        if length < 0:
            return None
        return self.take(length).decode("utf-8", "replace")

    def skip(self) -> bool:
        """Step over a string; False when it was the null one."""
        length = self.int()
        if length < 0:
            return False
        end = self.pos + length
        if end > len(self.data):
            raise self._short(end)
        self.pos = end
        return True

    def offset(self) -> tuple[int, int]:
        state = self.byte()
        return state, int.from_bytes(self.take(self.off_size), "little")


def _header(reader: _Reader) -> tuple[tuple[int, int, int], int]:
    if reader.take(5) != MAGIC:
        raise DumpFormatError("not a pg_dump archive (no PGDMP signature)")
    version = (reader.byte(), reader.byte(), reader.byte())
    if not OLDEST <= version[:2] <= NEWEST:
        raise DumpFormatError(f"archive version {'.'.join(map(str, version))} is not one this "
                              f"check knows ({'.'.join(map(str, OLDEST))}–"
                              f"{'.'.join(map(str, NEWEST))})")
    reader.int_size, reader.off_size = reader.byte(), reader.byte()
    if reader.int_size not in (4, 8) or reader.off_size not in (4, 8):
        raise DumpFormatError("the dump's header is damaged (integer sizes)")
    if reader.byte() != FORMAT_CUSTOM:
        raise DumpFormatError("not a custom-format archive")
    if version[:2] >= (1, 15):
        compression = reader.byte()
    else:
        compression = COMPRESS_NONE if reader.int() == 0 else COMPRESS_GZIP
    for _ in range(7):  # creation time: sec, min, hour, day, month, year, isdst
        reader.int()
    for _ in range(3):  # database name, server version, pg_dump version
        reader.str()
    return version, compression


def _toc(reader: _Reader, version: tuple[int, int, int]) -> list[Entry]:
    count = reader.int()
    if count < 0:
        raise DumpFormatError("the dump's table of contents is damaged")
    entries = []
    for _ in range(count):
        dump_id = reader.int()
        reader.int()  # had a dumper
        reader.skip(), reader.skip()  # table oid, oid
        tag, desc = reader.str(), reader.str() or ""
        reader.int()  # section
        reader.skip(), reader.skip()  # definition, drop statement
        copy_stmt = reader.str()
        namespace = reader.str()
        reader.skip()  # tablespace
        if version[:2] >= (1, 14):
            reader.skip()  # table access method
        if version[:2] >= (1, 16):
            reader.int()  # relkind
        reader.skip(), reader.skip()  # owner, "with oids" (always false)
        while reader.skip():  # dependencies, up to a null
            pass
        state, offset = reader.offset()
        if state not in (POS_NOT_SET, POS_SET, NO_DATA):
            raise DumpFormatError("the dump's table of contents is damaged (data offset)")
        entries.append(Entry(dump_id, desc, namespace, tag, state, offset, copy_stmt))
    return entries


def _chunks(reader: _Reader, inflate: bool, keep: bool = False) -> tuple[int, bytes]:
    """Walk one stream of chunks to its zero-length end: the lines it holds and its last
    bytes, or all of them when ``keep`` (inflated first when ``inflate``)."""
    inflater = zlib.decompressobj() if inflate else None
    lines, tail = 0, b""
    while (length := reader.int()) != 0:
        if length < 0:
            raise DumpFormatError("a data block of the dump is damaged (chunk length)")
        chunk = reader.take(length)
        if inflater is not None:
            try:
                chunk = inflater.decompress(chunk)
            except zlib.error as exc:
                raise DumpFormatError(f"a data block of the dump is damaged: {exc}") from exc
        lines += chunk.count(b"\n")
        tail = tail + chunk if keep else (tail + chunk)[-len(COPY_END):]
    if inflater is not None and not inflater.eof:
        raise DumpFormatError("a data block of the dump is cut short (compressed stream)")
    return lines, tail


def _block(reader: _Reader, entry: Entry, compression: int, found: Checked,
           keep: frozenset[str]) -> int | None:
    kind, dump_id = reader.byte(), reader.int()
    if dump_id != entry.dump_id or kind not in (BLK_DATA, BLK_BLOBS):
        raise DumpFormatError(f"the dump's data for entry {entry.dump_id} is missing or "
                              "misplaced")
    inflate = compression == COMPRESS_GZIP
    if kind == BLK_BLOBS:
        while reader.int() != 0:  # one stream per large object, up to a zero oid
            _chunks(reader, inflate)
        return None
    kept = entry.tag in keep and entry.namespace == "public" and bool(entry.copy_stmt)
    lines, tail = _chunks(reader, inflate, kept)
    if compression not in (COMPRESS_NONE, COMPRESS_GZIP):
        return None
    if not tail.endswith(COPY_END):
        raise DumpFormatError(f"the COPY data of {entry.tag!r} in the dump is cut short")
    if kept:
        found.kept[entry.tag or ""] = (entry.copy_stmt or "", tail)
    return lines - COPY_END.count(b"\n")


_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


def _copy_value(text: str) -> str | None:
    """A value of ``COPY``'s text format (``\\N`` is null; backslash escapes undone)."""
    if text == "\\N":
        return None
    if "\\" not in text:
        return text
    out, chars = [], iter(text)
    for char in chars:
        if char == "\\":
            nxt = next(chars, "")
            out.append(_ESCAPES.get(nxt, nxt))
        else:
            out.append(char)
    return "".join(out)


def check_custom_dump(path: Path, keep: frozenset[str] = frozenset()) -> Checked:
    """Check the archive at ``path`` whole; :class:`DumpFormatError` says what is wrong.
    The data of the ``public`` tables named in ``keep`` is kept (see :meth:`Checked.table`)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DumpFormatError(f"cannot read the dump: {exc.strerror}") from exc
    reader = _Reader(data)
    version, compression = _header(reader)
    entries = _toc(reader, version)
    with_data = [e for e in entries if e.data_state != NO_DATA]
    found = Checked(version, len(entries))
    end = reader.pos
    for entry in with_data:
        # pg_dump writes the blocks in table-of-contents order after it; when it could seek it
        # also rewrote the table of contents with each block's offset: both must agree.
        if entry.data_state == POS_SET and entry.offset != end:
            raise DumpFormatError(f"the dump's data for entry {entry.dump_id} is not where "
                                  "its table of contents says")
        reader.pos = end
        rows = _block(reader, entry, compression, found, keep)
        end = reader.pos
        if entry.desc == "TABLE DATA":
            found.rows[(entry.namespace, entry.tag)] = rows
    if end != len(data):
        raise DumpFormatError(f"the dump has {len(data) - end} unexpected bytes after its "
                              "last data block")
    return found
