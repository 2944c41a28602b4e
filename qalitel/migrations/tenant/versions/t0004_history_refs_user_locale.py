"""history rows name the folder they speak of by id, so its name can be hidden from people
not cleared for it; users keep the language their mail speaks

Revision ID: t0004
Revises: t0003
Create Date: 2026-12-01 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 't0004'
down_revision: str | None = 't0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('locale', sa.String(length=8), nullable=True))
    with op.batch_alter_table('nonconformity_history', schema=None) as batch_op:
        batch_op.add_column(sa.Column('old_ref', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('new_ref', sa.Integer(), nullable=True))
    # Rows written before: find the folder by the name they kept (unmatched rows stay NULL,
    # and their names are shown to administrators only).
    for column, value in (('old_ref', 'old_value'), ('new_ref', 'new_value')):
        op.execute(
            f"UPDATE nonconformity_history SET {column} = (SELECT folders.id FROM folders "
            f"WHERE folders.name = nonconformity_history.{value}) WHERE field = 'folder'")


def downgrade() -> None:
    with op.batch_alter_table('nonconformity_history', schema=None) as batch_op:
        batch_op.drop_column('new_ref')
        batch_op.drop_column('old_ref')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('locale')
