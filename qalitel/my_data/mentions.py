"""Where a person is *mentioned*: the free-text columns that may name someone
(:data:`FREE_TEXT`, an explicit list: codes such as a status, a severity, a file's SHA-256 or
content type never name anyone), and whole-word, case-insensitive matching of their names and
e-mail addresses. Names shorter than :data:`MIN_NAME_LENGTH` are never looked for ("Ed" is in
"Edge"); an e-mail address always is, but only whole.

The personal export (:mod:`qalitel.my_data.collect`) and the erasure
(:mod:`qalitel.my_data.erasure`) both use it, so what one finds the other replaces.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sqlalchemy import ColumnElement, Table, func, or_, true

from qalitel.records.field_models import ISHIKAWA_FIELDS, WHY_FIELDS
from tenants.schema import TenantBase

MIN_NAME_LENGTH = 3

# table -> its free-text columns (titles, descriptions, comments, history values, names)
FREE_TEXT: dict[str, tuple[str, ...]] = {
    "nonconformities": ("title", "description", "cause_analysis", "immediate_action", "lot",
                        "quantity_unit"),
    "nonconformity_analyses": (*WHY_FIELDS, *ISHIKAWA_FIELDS),
    "nonconformity_status_changes": ("comment", "justification"),
    "nonconformity_history": ("old_value", "new_value"),
    "actions": ("title", "description", "effectiveness_comment", "effectiveness_criteria"),
    "action_history": ("old_value", "new_value"),
    "attachments": ("name",),
    "catalog_entries": ("name",),
    "folders": ("name",),
    "groups": ("name",),
    "erasure_requests": ("reason",),
    "notifications": ("subject", "error"),
}

# table -> {column: why it is not free text}: every other String/Text column of the tenant
# schema is in FREE_TEXT (tests/test_my_data_mentions.py walks the schema).
_CODE = "a code from a fixed set"
NOT_FREE_TEXT: dict[str, dict[str, str]] = {
    "tenant_identity": {"slug": "the tenant's slug", "tenant_uid": "an identifier"},
    "users": {"name": "the person's own row: becomes the pseudonym",
              "email": "the person's own row: becomes the tombstone address",
              "password_hash": "a hash, replaced", "session_token": "a token, replaced",
              "profile": _CODE, "locale": _CODE, "uid": "an identifier"},
    "user_former_names": {"name": "the person's own rows: deleted"},
    "login_events": {"outcome": _CODE, "address": "the person's own rows: deleted",
                     "user_agent": "the person's own rows: deleted"},
    "erasure_requests": {"state": _CODE},
    "branding": {"logo_kind": _CODE},
    "catalog_entries": {"kind": _CODE},
    "workflow_rules": {"to_status": _CODE, "allowed": _CODE},
    "notifications": {"key": "kind, ids and a date", "kind": _CODE, "object_type": _CODE,
                      "status": _CODE},
    "nonconformities": {"status": _CODE, "origin": _CODE, "severity": _CODE,
                        "search_text": "the folded copy, recomputed (records.search)"},
    "nonconformity_analyses": {"main_cause": _CODE,
                               "search_text": "the folded copy, recomputed (records.search)"},
    "nonconformity_history": {"field": "a field name"},
    "nonconformity_status_changes": {"from_status": _CODE, "to_status": _CODE},
    "actions": {"kind": _CODE, "status": _CODE,
                "search_text": "the folded copy, recomputed (records.search)"},
    "action_history": {"field": "a field name"},
    "attachments": {"sha256": "a hash", "kind": _CODE, "content_type": "a media type"},
}

# A mention stands alone: a name not inside a word ("Ed" is not in "Edge"), nor a hyphenated
# compound ("Al-Rashid"), nor the local part of an address ("al@x.org"), though "Al.jpg"
# names it; an address not inside a longer one ("ann@acme.example" is not in
# "joann@acme.example.org").
_NAME = r"(?<![\w.@-]){}(?!\w|[-@]\w)"
_EMAIL = r"(?<![\w.@+-]){}(?!\w|[.@+-]\w)"


def needles(names: Iterable[str | None], emails: Iterable[str | None]) -> list[str]:
    """The strings to look for: names of at least :data:`MIN_NAME_LENGTH` characters, every
    address; longest first (so a longer mention wins over a shorter one inside it)."""
    found = {n.strip() for n in names if n and len(n.strip()) >= MIN_NAME_LENGTH}
    found |= {e.strip() for e in emails if e and e.strip()}
    return sorted(found, key=lambda n: (-len(n), n))


def pattern(strings: Iterable[str]) -> re.Pattern[str] | None:
    """Whole-word, case-insensitive regular expression matching any of ``strings``."""
    strings = sorted(set(strings), key=lambda n: (-len(n), n))
    if not strings:
        return None
    return re.compile("|".join((_EMAIL if "@" in s else _NAME).format(re.escape(s))
                               for s in strings), re.IGNORECASE)


def mentions(text: object, regex: re.Pattern[str] | None) -> bool:
    return regex is not None and isinstance(text, str) and regex.search(text) is not None


def replace_whole_words(text: str, replacements: dict[str, str]) -> str:
    """``text`` with each whole-word, case-insensitive occurrence of a key of
    ``replacements`` replaced by its value (longer keys first)."""
    regex = pattern(replacements)
    if regex is None:
        return text
    lowered = {key.lower(): value for key, value in replacements.items()}
    return regex.sub(lambda m: lowered.get(m.group(0).lower(), m.group(0)), text)


def free_text_tables() -> list[tuple[Table, list]]:
    """The tables of :data:`FREE_TEXT` with their columns."""
    tables = TenantBase.metadata.tables
    return [(tables[name], [tables[name].c[c] for c in columns])
            for name, columns in FREE_TEXT.items() if name in tables]


def prefilter(columns: list, strings: list[str]) -> ColumnElement[bool]:
    """A cheap SQL superset of the rows whose ``columns`` mention one of ``strings`` (the
    exact whole-word test is done in Python). SQLite's ``lower`` knows ASCII only, so with a
    non-ASCII needle every row is a candidate."""
    if not all(s.isascii() for s in strings):
        return true()
    return or_(*(func.lower(c).contains(s.lower(), autoescape=True)
                 for c in columns for s in strings))
