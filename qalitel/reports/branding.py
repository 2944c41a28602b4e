"""The tenant's logo: checked by its content (a PNG or JPEG that decodes, of bounded size and
dimensions), stored in the tenant database, shown in the PDF reports as a ``data:`` URL.
Functions flush and never commit (:mod:`qalitel.transaction`)."""

from __future__ import annotations

import base64
import io
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from flask_babel import gettext as _
from PIL import Image

from core import filetypes
from qalitel.records import visibility
from qalitel.records.files.service import human_size
from qalitel.records.service.checks import PermissionDenied
from qalitel.reports.models import BRANDING_ID, LOGO_KINDS, Branding
from qalitel.users.models import User
from tenants.context import tdb

LOGO_MAX_BYTES = 512 * 1024
LOGO_MAX_SIDE = 3000
_PIL_FORMATS = {"png": "PNG", "jpeg": "JPEG"}
_JPEG_END = b"\xff\xd9"


class LogoRefused(ValueError):
    """A logo refused; the message is meant for the person who sent it."""


def current() -> Branding | None:
    return tdb.get(Branding, BRANDING_ID)


def _kind(data: bytes) -> str | None:
    """The kind :mod:`core.filetypes` tells from the bytes (the one rule for file types)."""
    with tempfile.TemporaryDirectory(prefix="qalitel-logo-") as folder:
        path = Path(folder) / "logo"
        path.write_bytes(data)
        return filetypes.detect(path)


def check_logo(data: bytes) -> str:
    """The logo's kind (``png`` or ``jpeg``), or :class:`LogoRefused` saying why not."""
    if not data:
        raise LogoRefused(_("The file is empty."))
    if len(data) > LOGO_MAX_BYTES:
        raise LogoRefused(_("The file is too large (at most %(max)s).",
                            max=human_size(LOGO_MAX_BYTES)))
    kind = _kind(data)
    if kind not in LOGO_KINDS:
        raise LogoRefused(_("The logo must be a PNG or JPEG image."))
    try:
        with Image.open(io.BytesIO(data), formats=[_PIL_FORMATS[kind]]) as image:
            width, height = image.size
            if width > LOGO_MAX_SIDE or height > LOGO_MAX_SIDE:
                raise LogoRefused(_("The image is too large (at most %(max)d pixels a side).",
                                    max=LOGO_MAX_SIDE))
            image.verify()  # structure and checksums: WeasyPrint lets Pillow load truncated
        with Image.open(io.BytesIO(data), formats=[_PIL_FORMATS[kind]]) as image:
            image.load()    # images (ImageFile.LOAD_TRUNCATED_IMAGES), so check the end too
    except LogoRefused:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise LogoRefused(_("The image cannot be read.")) from None
    if kind == "jpeg" and not data.rstrip(b"\0\r\n ").endswith(_JPEG_END):
        raise LogoRefused(_("The image cannot be read."))
    return kind


def set_logo(actor: User, data: bytes) -> Branding:
    if not visibility.is_admin(actor):
        raise PermissionDenied()
    kind = check_logo(data)
    branding = current()
    if branding is None:
        branding = Branding(id=BRANDING_ID, logo=data, logo_kind=kind)
        tdb.add(branding)
    else:
        branding.logo, branding.logo_kind = data, kind
        branding.updated_at = datetime.now(UTC)
    tdb.flush()
    return branding


def remove_logo(actor: User) -> bool:
    if not visibility.is_admin(actor):
        raise PermissionDenied()
    branding = current()
    if branding is None:
        return False
    tdb.delete(branding)
    tdb.flush()
    return True


def content_type(branding: Branding) -> str:
    return filetypes.content_type(branding.logo_kind)


def data_url(branding: Branding | None) -> str | None:
    """The logo as a ``data:`` URL (what the PDF renderer is allowed to load), or None."""
    if branding is None:
        return None
    encoded = base64.b64encode(branding.logo).decode("ascii")
    return f"data:{content_type(branding)};base64,{encoded}"
