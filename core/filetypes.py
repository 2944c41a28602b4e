"""What a file is, told by its content (magic bytes), never by its name.

:func:`detect` returns one of :data:`KINDS` or ``None`` for anything it does not recognise;
callers accept only the kinds their configuration allows. Office files are zip archives:
their member list (never their decompressed content, so no zip bomb is expanded) tells a
Word, Excel or PowerPoint document from any other zip; macro-enabled ones are refused.
"""

from __future__ import annotations

import codecs
import re
import zipfile
from pathlib import Path

# kind: the content type it is served with
KINDS: dict[str, str] = {
    "pdf": "application/pdf",
    "png": "image/png",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
    "text": "text/plain; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "odt": "application/vnd.oasis.opendocument.text",
    "ods": "application/vnd.oasis.opendocument.spreadsheet",
}

_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "pdf"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
)
_ZIP = b"PK\x03\x04"
_OOXML_MAIN = (("word/document.xml", "docx"), ("xl/workbook.xml", "xlsx"),
               ("ppt/presentation.xml", "pptx"))
_ODF_MIMETYPES = {b"application/vnd.oasis.opendocument.text": "odt",
                  b"application/vnd.oasis.opendocument.spreadsheet": "ods"}
_ZIP_MEMBERS_MAX = 10_000
_NOT_TEXT = re.compile(rb"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_CHUNK = 1 << 16


def content_type(kind: str) -> str:
    return KINDS[kind]


def detect(path: Path, name: str = "") -> str | None:
    """The kind of the file at ``path``, or None. ``name`` only chooses between ``csv`` and
    ``text`` once the content has proved to be text."""
    with path.open("rb") as handle:
        head = handle.read(64)
    for magic, kind in _SIGNATURES:
        if head.startswith(magic):
            return kind
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head.startswith(_ZIP):
        return _zip_kind(path)
    if _is_text(path):
        return "csv" if name.lower().endswith(".csv") else "text"
    return None


def _zip_kind(path: Path) -> str | None:
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            if len(infos) > _ZIP_MEMBERS_MAX:
                return None
            names = {info.filename for info in infos}
            if infos and infos[0].filename == "mimetype" \
                    and infos[0].compress_type == zipfile.ZIP_STORED:
                if any(n.startswith(("Basic/", "Scripts/")) for n in names):
                    return None  # an OpenDocument file carrying macros or scripts
                with archive.open(infos[0]) as member:
                    return _ODF_MIMETYPES.get(member.read(100).strip())
    except (zipfile.BadZipFile, OSError, NotImplementedError, RuntimeError, ValueError):
        return None
    if "[Content_Types].xml" not in names or any(
            n.lower().endswith("vbaproject.bin") for n in names):
        return None
    for main, kind in _OOXML_MAIN:
        if main in names:
            return kind
    return None


def _is_text(path: Path) -> bool:
    """UTF-8 (a BOM allowed) without NUL or control characters other than tab, line breaks
    and form feed."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            if _NOT_TEXT.search(chunk):
                return False
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError:
                return False
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True
