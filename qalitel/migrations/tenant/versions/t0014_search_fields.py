"""Search also reads a record's lot, immediate action and structured analysis: search_text
on nonconformity_analyses, and the records' search_text recomputed (core.text.fold)

Revision ID: t0014_search_fields
Revises: t0009_closure_rules
Create Date: 2026-12-01 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from core.text import fold

revision: str = 't0014_search_fields'
down_revision: str | None = 't0009_closure_rules'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 500
_WHYS = tuple(f'{part}_{i}' for i in range(1, 6) for part in ('why', 'because'))
_ISHIKAWA = tuple(f'ishikawa_{c}' for c in (
    'method', 'machine', 'material', 'manpower', 'measurement', 'environment'))
# The searched fields as of this revision (the models' SEARCHED tuples then), by table:
# (primary key, fields).
SEARCHED = {
    'nonconformities': ('id', ('title', 'description', 'cause_analysis', 'lot',
                               'immediate_action')),
    'nonconformity_analyses': ('record_id', (*_WHYS, *_ISHIKAWA)),
}
BEFORE = {'nonconformities': ('id', ('title', 'description', 'cause_analysis'))}


def _refold(conn: sa.Connection, name: str, key: str, fields: tuple[str, ...]) -> None:
    """Recompute search_text of every row of ``name`` whose folded text differs, in batches."""
    table = sa.table(name, sa.column(key, sa.Integer()), sa.column('search_text', sa.Text()),
                     *(sa.column(f, sa.Text()) for f in fields))
    pk = table.c[key]
    statement = (table.update().where(pk == sa.bindparam('row_key'))
                 .values(search_text=sa.bindparam('row_text')))
    last = None
    while True:
        query = sa.select(pk, table.c.search_text, *(table.c[f] for f in fields))
        if last is not None:
            query = query.where(pk > last)
        rows = conn.execute(query.order_by(pk).limit(BATCH)).all()
        if not rows:
            return
        stale = [{'row_key': row[0], 'row_text': text} for row in rows
                 if (text := fold(' '.join(v for v in row[2:] if isinstance(v, str)))) != row[1]]
        if stale:
            conn.execute(statement, stale)
        last = rows[-1][0]


def upgrade() -> None:
    # Plain ADD COLUMN on both backends (no table copy); existing rows are folded in batches.
    op.add_column('nonconformity_analyses', sa.Column('search_text', sa.Text(),
                                                      server_default='', nullable=False))
    for name, (key, fields) in SEARCHED.items():
        _refold(op.get_bind(), name, key, fields)


def downgrade() -> None:
    op.drop_column('nonconformity_analyses', 'search_text')
    for name, (key, fields) in BEFORE.items():
        _refold(op.get_bind(), name, key, fields)
