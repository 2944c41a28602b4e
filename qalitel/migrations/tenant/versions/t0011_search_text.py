"""search_text on nonconformities and actions: their searched fields folded (core.text.fold)

Revision ID: t0011_search_text
Revises: t0008
Create Date: 2026-12-01 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from core.text import fold

revision: str = 't0011_search_text'
down_revision: str | None = 't0013_branding'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 500
# The searched fields as of this revision (the models' SEARCHED tuples then).
SEARCHED = {
    'nonconformities': ('title', 'description', 'cause_analysis'),
    'actions': ('title', 'description'),
}


def _backfill(conn: sa.Connection, name: str, fields: tuple[str, ...]) -> None:
    table = sa.table(name, sa.column('id', sa.Integer()), sa.column('search_text', sa.Text()),
                     *(sa.column(f, sa.Text()) for f in fields))
    statement = (table.update().where(table.c.id == sa.bindparam('row_id'))
                 .values(search_text=sa.bindparam('row_text')))
    last = 0
    while rows := conn.execute(sa.select(table.c.id, *(table.c[f] for f in fields))
                               .where(table.c.id > last).order_by(table.c.id)
                               .limit(BATCH)).all():
        conn.execute(statement, [
            {'row_id': row.id,
             'row_text': fold(' '.join(v for v in row[1:] if isinstance(v, str)))}
            for row in rows])
        last = rows[-1].id


def upgrade() -> None:
    # Plain ADD COLUMN on both backends (no table copy); existing rows are folded in batches.
    for name, fields in SEARCHED.items():
        op.add_column(name, sa.Column('search_text', sa.Text(), server_default='',
                                      nullable=False))
        _backfill(op.get_bind(), name, fields)


def downgrade() -> None:
    for name in SEARCHED:
        op.drop_column(name, 'search_text')
