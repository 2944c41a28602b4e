"""One page of a list: its rows, the total, and the numbers a pager shows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select
from sqlalchemy.orm import Session

PAGE_SIZES = (10, 25, 50, 100)
DEFAULT_PAGE_SIZE = 25


@dataclass
class Page:
    rows: list[Any]
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))

    @property
    def first_index(self) -> int:
        return 0 if not self.total else (self.page - 1) * self.page_size + 1

    @property
    def last_index(self) -> int:
        return min(self.total, self.page * self.page_size)

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


def paginate(session: Session, rows: Select, count: Select, page: int, page_size: int,
             *, scalars: bool = False) -> Page:
    """Run ``count`` then the page of ``rows`` (a page past the end shows the last one).

    The first page is read first: when it is not full it holds every row, so its length is
    the total and ``count`` is not sent (a short or filtered list costs one statement)."""

    def read(query: Select) -> list[Any]:
        result = session.execute(query)
        return list(result.scalars()) if scalars else list(result.all())

    if page <= 1:
        items = read(rows.limit(page_size))
        total = len(items) if len(items) < page_size else session.execute(count).scalar() or 0
        return Page(rows=items, total=total, page=1, page_size=page_size)
    total = session.execute(count).scalar() or 0
    page = min(max(page, 1), max(1, -(-total // page_size)))
    items = read(rows.limit(page_size).offset((page - 1) * page_size))
    return Page(rows=items, total=total, page=page, page_size=page_size)
