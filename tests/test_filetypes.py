"""Attached files are recognised by content (``core.filetypes``) and kept in a per-tenant,
content-addressed store (``core.filestore``): no database involved."""

from __future__ import annotations

import hashlib
import io
import os
import time
import uuid

import pytest

from core import filetypes
from core.config import ConfigError, load
from core.filestore import FileStore, TooLarge, remove_tenant_files, tenant_files_dir
from tests.files_helpers import EXE, GIF, JPEG, PDF, PNG, TEXT, WEBP, odf, ooxml


def _detect(tmp_path, content: bytes, name: str = "upload.bin") -> str | None:
    path = tmp_path / uuid.uuid4().hex
    path.write_bytes(content)
    return filetypes.detect(path, name)


@pytest.mark.parametrize(("content", "kind"), [
    (PDF, "pdf"), (PNG, "png"), (JPEG, "jpeg"), (GIF, "gif"), (WEBP, "webp"),
    (TEXT, "text"), (b"\xef\xbb\xbfa;b\r\n1;2\r\n", "text"),
    (ooxml("word/document.xml"), "docx"), (ooxml("xl/workbook.xml"), "xlsx"),
    (ooxml("ppt/presentation.xml"), "pptx"),
    (odf("application/vnd.oasis.opendocument.text"), "odt"),
    (odf("application/vnd.oasis.opendocument.spreadsheet"), "ods"),
])
def test_kinds_are_told_by_content(tmp_path, content, kind):
    assert _detect(tmp_path, content) == kind


def test_the_name_does_not_make_the_kind(tmp_path):
    assert _detect(tmp_path, EXE, "photo.png") is None
    assert _detect(tmp_path, PNG, "notes.txt") == "png"
    assert _detect(tmp_path, b"a,b\n1,2\n", "data.CSV") == "csv"
    assert _detect(tmp_path, PDF, "data.csv") == "pdf"


@pytest.mark.parametrize("content", [
    EXE,
    b"text with a NUL \x00 inside",
    b"bell \x07 character",
    "latin-1 caf\xe9".encode("latin-1"),
    b"\xe2\x82",  # UTF-8 cut in the middle of a character
    ooxml("word/document.xml", macro=True),  # .docm: macros refused
    ooxml("other/thing.xml"),  # a zip, but no Office document
    b"PK\x03\x04 not really a zip",
    odf("application/x-unknown"),
    odf("application/vnd.oasis.opendocument.text", macro="Basic/Standard/Module1.xml"),
    odf("application/vnd.oasis.opendocument.spreadsheet", macro="Scripts/python/run.py"),
])
def test_unknown_or_dangerous_content_is_refused(tmp_path, content):
    assert _detect(tmp_path, content) is None


def test_store_writes_by_hash_and_refuses_oversize(tmp_path):
    store = FileStore(tmp_path / "t")
    staged = store.stage(io.BytesIO(PNG), max_bytes=len(PNG))
    assert staged.sha256 == hashlib.sha256(PNG).hexdigest() and staged.size == len(PNG)
    final = store.commit(staged)
    assert final == tmp_path / "t" / staged.sha256[:2] / staged.sha256
    assert final.read_bytes() == PNG and not staged.path.exists()
    with pytest.raises(TooLarge):
        store.stage(io.BytesIO(PNG), max_bytes=len(PNG) - 1)
    assert list((tmp_path / "t" / "tmp").iterdir()) == []  # nothing half-written stays
    again = store.commit(store.stage(io.BytesIO(PNG), max_bytes=10**6))
    assert again == final and list(store.blobs()) == [staged.sha256]


def test_unreferenced_files_go_once_old_enough(tmp_path):
    store = FileStore(tmp_path / "t")
    kept = store.commit(store.stage(io.BytesIO(PNG), max_bytes=10**6))
    orphan = store.commit(store.stage(io.BytesIO(PDF), max_bytes=10**6))
    leftover = store.stage(io.BytesIO(TEXT), max_bytes=10**6)  # a crashed upload's part
    assert store.unreferenced([kept.name], older_than_s=3600) == []
    past = time.time() - 7200
    for path in (kept, orphan, leftover.path):
        os.utime(path, (past, past))
    assert store.unreferenced([kept.name], older_than_s=3600) == [orphan.name]
    assert kept.exists() and not orphan.exists() and not leftover.path.exists()


def test_store_refuses_what_is_not_a_hash_or_a_uid(tmp_path):
    settings = load({"instance_dir": tmp_path})
    with pytest.raises(ValueError):
        FileStore(tmp_path).path("../../etc/passwd")
    for uid in ("../other", "", "a" * 36):
        with pytest.raises(ValueError):
            tenant_files_dir(settings, uid)
    uid = str(uuid.uuid4())
    assert tenant_files_dir(settings, uid) == tmp_path.resolve() / "files" / uid
    folder = tenant_files_dir(settings, uid)
    (folder / "ab").mkdir(parents=True)
    (folder / "ab" / "x").write_bytes(b"x")
    remove_tenant_files(settings, uid)
    assert not folder.exists()
    remove_tenant_files(settings, uid)  # nothing there: nothing to do


def test_limits_come_from_configuration(tmp_path):
    settings = load({"instance_dir": tmp_path}, environ={
        "QALITEL_FILE_MAX_BYTES": "1000", "QALITEL_FILE_MAX_COUNT": "3",
        "QALITEL_FILE_TYPES": "PDF, png,pdf"})
    assert (settings.file_max_bytes, settings.file_max_count) == (1000, 3)
    assert settings.file_types == ("pdf", "png")
    defaults = load({"instance_dir": tmp_path}, environ={})
    assert defaults.file_max_bytes == 20 * 1024 * 1024
    for environ in ({"QALITEL_FILE_TYPES": "pdf,exe"}, {"QALITEL_FILE_MAX_BYTES": "0"},
                    {"QALITEL_FILE_MAX_COUNT": "-1"}, {"QALITEL_FILE_TYPES": " , "}):
        with pytest.raises(ConfigError):
            load({"instance_dir": tmp_path}, environ=environ)
