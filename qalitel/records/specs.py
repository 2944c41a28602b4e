"""What a list shows, from its query string or saved preferences: allowed filters, search,
sort and page, every unknown or malformed value dropped."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core import validation
from core.pagination import DEFAULT_PAGE_SIZE, PAGE_SIZES
from qalitel.records.models import ACTION_KINDS, ACTION_STATUSES, ORIGINS, SEVERITIES, STATUSES

SEARCH_MAX = 100
MAX_PAGE = 10**6
FILTER_VALUE_MAX = 40
# Filters a link sets but the list's form does not show (the actions of one record).
FORMLESS_FILTERS = frozenset({"record"})


@dataclass
class ListSpec:
    """What a list shows: validated filters, sort, page."""

    name: str
    filters: dict[str, str] = field(default_factory=dict)
    q: str = ""
    sort: str = ""
    page: int = 1
    page_size: int = DEFAULT_PAGE_SIZE

    @property
    def sort_key(self) -> str:
        return self.sort.lstrip("-")

    @property
    def descending(self) -> bool:
        return self.sort.startswith("-")

    @property
    def active_filters(self) -> int:
        """How many filters of the list's form narrow it (the search counts as one)."""
        return len(self.filters.keys() - FORMLESS_FILTERS) + bool(self.q)

    def args(self, **override: Any) -> dict[str, Any]:
        """Query-string arguments reproducing this list (for links), with overrides."""
        values: dict[str, Any] = dict(self.filters)
        if self.q:
            values["q"] = self.q
        values["sort"] = self.sort
        values["per_page"] = self.page_size
        values["page"] = self.page
        values.update(override)
        return {k: v for k, v in values.items() if v not in (None, "")}

    def sort_args(self, key: str) -> dict[str, Any]:
        """Arguments of a column header link: sort by ``key``, toggling the direction."""
        target = f"-{key}" if self.sort == key else key
        return self.args(sort=target, page=1)


def _id(value: str) -> bool:
    return validation.id_or_none(value) is not None


def _user_filter(value: str) -> bool:
    return value in ("me", "none") or _id(value)


# Per list: allowed filters (name -> validator), sort columns, default sort.
RECORD_FILTERS = {
    "status": lambda v: v in STATUSES or v == "active",
    "severity": lambda v: v in SEVERITIES,
    "origin": lambda v: v in ORIGINS,
    "folder": lambda v: v == "none" or _id(v),
    "assignee": _user_filter,
    "overdue": lambda v: v == "1",
}
ACTION_FILTERS = {
    "status": lambda v: v in ACTION_STATUSES or v == "active",
    "kind": lambda v: v in ACTION_KINDS,
    "owner": _user_filter,
    "overdue": lambda v: v == "1",
    "record": lambda v: v == "none" or _id(v),
}
RECORD_SORTS = ("number", "title", "status", "severity", "detected_on", "folder", "assignee",
                "updated")
ACTION_SORTS = ("id", "title", "kind", "status", "due_date", "owner", "record")
DEFAULTS = {"records": "-number", "actions": "due_date"}
LISTS = {"records": (RECORD_FILTERS, RECORD_SORTS), "actions": (ACTION_FILTERS, ACTION_SORTS)}


def _to_int(raw: Any, default: int) -> int:
    if isinstance(raw, bool) or not isinstance(raw, str | int) or len(str(raw)) > 12:
        return default
    try:
        return int(raw)
    except ValueError:
        return default


def parse_spec(name: str, args: Mapping[str, Any]) -> ListSpec:
    """A list spec from query arguments or saved preferences, keeping only allowed values."""
    allowed_filters, sorts = LISTS[name]
    filters = {}
    for key, check in allowed_filters.items():
        value = args.get(key)
        if isinstance(value, str) and value and len(value) <= FILTER_VALUE_MAX and check(value):
            filters[key] = value
    q = args.get("q")
    q = q.strip()[:SEARCH_MAX] if isinstance(q, str) else ""
    sort = args.get("sort")
    if not isinstance(sort, str) or sort.lstrip("-") not in sorts or sort.count("-") > 1:
        sort = DEFAULTS[name]
    page_size = _to_int(args.get("per_page", args.get("page_size")), DEFAULT_PAGE_SIZE)
    if page_size not in PAGE_SIZES:
        page_size = DEFAULT_PAGE_SIZE
    page = min(max(_to_int(args.get("page"), 1), 1), MAX_PAGE)
    return ListSpec(name=name, filters=filters,
                    q="".join(c for c in q if not validation.has_forbidden_characters(c)),
                    sort=sort, page=page, page_size=page_size)
