"""Helpers of the attached-files tests: sample files of each kind, uploads through the
pages, and a look at the tenant's store."""

from __future__ import annotations

import dataclasses
import io
import zipfile
from pathlib import Path

from core.filestore import LOCK
from tests.conftest import csrf_token

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(64))
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(100)
GIF = b"GIF89a" + bytes(40)
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + bytes(40)
TEXT = "Mesure : 12,5 mm — écart constaté\n".encode()
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + bytes(64)


def ooxml(main: str, *, macro: bool = False) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr(main, "<document/>")
        if macro:
            archive.writestr(main.split("/")[0] + "/vbaProject.bin", b"\x00" * 10)
    return buffer.getvalue()


def odf(mimetype: str, *, macro: str | None = None) -> bytes:
    """An OpenDocument file; ``macro``: the name of a macro/script member to add."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), mimetype)  # stored, first
        archive.writestr("content.xml", "<office:document-content/>")
        if macro:
            archive.writestr(macro, "Sub Main\nEnd Sub")
    return buffer.getvalue()


def configure(app, **changes) -> None:
    """Change the app's settings for the rest of the test (limits of uploads)."""
    app.extensions["qalitel_settings"] = dataclasses.replace(
        app.extensions["qalitel_settings"], **changes)


def files_dir(app, uid: str) -> Path:
    from core.filestore import tenant_files_dir

    return tenant_files_dir(app.extensions["qalitel_settings"], uid)


def stored(app, uid: str) -> dict[str, bytes]:
    """Every file in the tenant's folder, temporary ones included (not the lock file):
    relative path → bytes."""
    root = files_dir(app, uid)
    if not root.exists():
        return {}
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*")
            if p.is_file() and p.name != LOCK}


def upload(client, page: str, target: str, name: str, content: bytes, *,
           token: str | None = None, with_token: bool = True):
    data: dict = {"upload": (io.BytesIO(content), name)}
    if with_token:
        data["csrf_token"] = token or csrf_token(client, page)
    return client.post(target, data=data, content_type="multipart/form-data")


def post_form(client, page: str, target: str):
    return client.post(target, data={"csrf_token": csrf_token(client, page)})
