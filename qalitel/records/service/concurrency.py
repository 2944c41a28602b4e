"""Optimistic concurrency for edit forms.

An edit form carries a *version*: one short digest per field of the values it was built
from. On submit, a field whose posted value matches its digest was left alone and is not
written (whatever the row holds now: someone else's change survives); a changed field is
written, unless the row also changed in that field since the form was built, to another
value: then nothing is saved and the person gets the current version (an
:class:`EditConflict`). Digests, not values, keep the form small and say nothing the form
does not show already.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from flask_babel import gettext as _

from qalitel.records.service.checks import RecordError

PREFIX = "v1"
DIGEST_SIZE = 8


class EditConflict(RecordError):
    """Someone else changed, since the form was built, fields the person changed too."""

    def __init__(self, fields: Sequence[str], changed: Mapping[str, Any]) -> None:
        self.fields = tuple(fields)
        self.changed = dict(changed)
        super().__init__(_("Changed by someone else since you opened this form."))


def _canonical(value: Any) -> str:
    if value is None:
        return "\x00"
    if isinstance(value, str):
        return "s" + value.replace("\r\n", "\n").replace("\r", "\n").strip()
    if isinstance(value, bool):
        return "b" + str(value)
    if isinstance(value, date):
        return "d" + value.isoformat()
    return "v" + str(value)


def _digest(field: str, value: Any) -> str:
    return hashlib.blake2b(f"{field}\x1f{_canonical(value)}".encode(),
                           digest_size=DIGEST_SIZE).hexdigest()


def version_of(fields: Sequence[str], values: Mapping[str, Any]) -> str:
    """The version string of ``values`` (by field name), for the form's hidden field."""
    return ".".join([PREFIX, *(_digest(name, values[name]) for name in fields)])


def parse_version(fields: Sequence[str], version: object) -> dict[str, str]:
    """Digests by field, or :class:`RecordError` for a missing or damaged version."""
    parts = version.split(".") if isinstance(version, str) else []
    if (len(parts) != len(fields) + 1 or parts[0] != PREFIX
            or any(len(p) != 2 * DIGEST_SIZE or not all(c in "0123456789abcdef" for c in p)
                   for p in parts[1:])):
        raise RecordError(_("This form is incomplete or out of date: reload the page and "
                            "make your changes again."))
    return dict(zip(fields, parts[1:], strict=True))


def merge(fields: Sequence[str], version: object, posted: Mapping[str, Any],
          current: Mapping[str, Any]) -> dict[str, Any]:
    """The posted fields the person changed since the form was built; raises
    :class:`EditConflict` when the row changed in one of them too (to another value)."""
    base = parse_version(fields, version)
    changed: dict[str, Any] = {}
    conflicts: list[str] = []
    for name, value in posted.items():
        mine = _digest(name, value)
        if name not in base or mine == base[name]:
            continue
        now = _digest(name, current[name])
        if now != base[name] and now != mine:
            conflicts.append(name)
        changed[name] = value
    if conflicts:
        raise EditConflict(conflicts, changed)
    return changed
