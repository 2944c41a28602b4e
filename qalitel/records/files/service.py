"""Attach, list and remove the files of non-conformities and actions.

The bytes are written to the tenant's store first (``core.filestore``), the row after, in
the request's transaction: a rolled-back request leaves at most an unreferenced file, which
:func:`sweep` removes later; a committed row always has its file. Removing a row removes
its file after the commit, once no other row refers to the same content. Functions flush
and never commit (:mod:`qalitel.transaction`).
"""

from __future__ import annotations

import logging
import unicodedata
from typing import BinaryIO

from flask_babel import format_decimal, ngettext
from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import filetypes, validation
from core.config import Settings, settings
from core.filestore import FileStore, TooLarge
from qalitel.records import visibility
from qalitel.records.files.models import FILE_NAME_MAX, ActionHistory, Attachment
from qalitel.records.models import Action, NonConformity, RecordHistory
from qalitel.records.service.checks import (
    PermissionDenied,
    RecordError,
    lock_writable,
)
from qalitel.transaction import after_commit
from qalitel.users.models import User
from tenants.context import current_tenant, tdb

log = logging.getLogger(__name__)

GRACE_S = 3600.0
"""A stored file younger than this is never removed as unreferenced: an upload of the same
content may not have committed its row yet."""
HISTORY_FIELD = "file"

Owner = NonConformity | Action


class FileError(RecordError):
    """An upload refused; the message is meant for the person who sent it."""


def tenant_store(config: Settings | None = None) -> FileStore:
    """The current tenant's store."""
    return FileStore.for_tenant(config or settings(), current_tenant().uid)


def human_size(size: int) -> str:
    """A size limit as people read it: "20 MB", "500 KB", "900 bytes"."""
    for unit, label in ((1024 * 1024, _("%(n)s MB")), (1024, _("%(n)s KB"))):
        if size >= unit:
            return label % {"n": format_decimal(round(size / unit, 1), format="#,##0.#")}
    return _("%(n)s bytes") % {"n": format_decimal(size, format="#,##0")}


def clean_name(raw: object) -> str:
    """The name a file is offered under: a plain name (NFC), never a path, printable,
    at most :data:`FILE_NAME_MAX` characters; anything else is refused, not rewritten."""
    name = unicodedata.normalize("NFC", raw).strip() if isinstance(raw, str) else ""
    if not name:
        raise FileError(_("The file has no name."))
    if "/" in name or "\\" in name:
        raise FileError(_("A file name cannot contain “/” or “\\”."))
    if name.startswith("."):
        raise FileError(_("A file name cannot start with a dot."))
    if validation.has_forbidden_characters(name):
        raise FileError(_("The file name contains a forbidden character."))
    if len(name) > FILE_NAME_MAX:
        raise FileError(ngettext("The file name is too long (at most %(num)d character).",
                                 "The file name is too long (at most %(num)d characters).",
                                 FILE_NAME_MAX))
    return name


def _owner_filter(owner: Owner):
    if isinstance(owner, NonConformity):
        return Attachment.record_id == owner.id
    return Attachment.action_id == owner.id


def files_of(owner: Owner) -> list[Attachment]:
    """The files of a record or action the caller has already fetched through visibility."""
    return list(tdb.execute(select(Attachment).where(_owner_filter(owner))
                            .order_by(Attachment.uploaded_at, Attachment.id)).scalars())


def file_of(owner: Owner, file_id: int) -> Attachment | None:
    """One file of ``owner``; None for an id of another record, action or nothing."""
    if not validation.is_id(file_id):
        return None
    return tdb.execute(select(Attachment).where(
        Attachment.id == file_id, _owner_filter(owner))).scalar_one_or_none()


def can_change_files(user: User, owner: Owner) -> bool:
    """Whoever may edit the record or action adds and removes its files (not while the
    record is closed or unfounded: :func:`is_locked`)."""
    if isinstance(owner, NonConformity):
        return visibility.can_edit_record(user, owner)
    return visibility.can_edit_action(user, owner)


def _history(actor: User, owner: Owner, old: str | None, new: str | None) -> None:
    if isinstance(owner, NonConformity):
        tdb.add(RecordHistory(record_id=owner.id, user_id=actor.id, field=HISTORY_FIELD,
                              old_value=old, new_value=new))
    else:
        tdb.add(ActionHistory(action_id=owner.id, user_id=actor.id, field=HISTORY_FIELD,
                              old_value=old, new_value=new))


def attach(actor: User, owner: Owner, stream: BinaryIO, filename: object) -> Attachment:
    """Store ``stream`` and record it as a file of ``owner``; :class:`FileError` for a file
    refused (nothing is kept then)."""
    if not can_change_files(actor, owner):
        raise PermissionDenied()
    lock_writable(owner)
    config = settings()
    name = clean_name(filename)
    count = tdb.execute(select(func.count()).select_from(Attachment)
                        .where(_owner_filter(owner))).scalar_one()
    if count >= config.file_max_count:
        raise FileError(ngettext("At most %(num)d file may be attached here.",
                                 "At most %(num)d files may be attached here.",
                                 config.file_max_count))
    store = tenant_store(config)
    try:
        staged = store.stage(stream, config.file_max_bytes)
    except TooLarge:
        raise FileError(_("The file is too large (at most %(max)s).",
                          max=human_size(config.file_max_bytes))) from None
    try:
        if staged.size == 0:
            raise FileError(_("The file is empty."))
        kind = filetypes.detect(staged.path, name)
        if kind is None or kind not in config.file_types:
            raise FileError(_("This type of file is not accepted. Accepted: %(kinds)s.",
                              kinds=", ".join(k.upper() for k in config.file_types)))
    except BaseException:
        store.discard(staged)
        raise
    store.commit(staged)
    attachment = Attachment(name=name, size=staged.size, sha256=staged.sha256, kind=kind,
                            content_type=filetypes.content_type(kind), uploaded_by_id=actor.id,
                            record_id=owner.id if isinstance(owner, NonConformity) else None,
                            action_id=owner.id if isinstance(owner, Action) else None)
    tdb.add(attachment)
    _history(actor, owner, None, name)
    tdb.flush()
    return attachment


def remove(actor: User, owner: Owner, attachment: Attachment) -> None:
    """Delete the row; its bytes go after the commit unless another row shares them."""
    if not can_change_files(actor, owner):
        raise PermissionDenied()
    lock_writable(owner)
    sha = attachment.sha256
    store = tenant_store()
    tdb.delete(attachment)
    _history(actor, owner, attachment.name, None)
    tdb.flush()

    def forget() -> None:
        if not is_referenced(tdb, sha):
            store.remove(sha, older_than_s=GRACE_S)

    after_commit(forget)


def is_referenced(session: Session, sha256: str) -> bool:
    return session.execute(select(Attachment.id).where(Attachment.sha256 == sha256)
                           .limit(1)).first() is not None


def sweep(config: Settings, tenant_uid: str, session: Session, *,
          older_than_s: float = GRACE_S) -> list[str]:
    """Remove the tenant's stored files that no row refers to (left by rolled-back uploads
    and by removals within the grace period); returns their hashes."""
    referenced = session.execute(select(Attachment.sha256).distinct()).scalars().all()
    removed = FileStore.for_tenant(config, tenant_uid).unreferenced(
        referenced, older_than_s=older_than_s)
    if removed:
        log.info("removed %d unreferenced file(s) of tenant %s", len(removed), tenant_uid)
    return removed
