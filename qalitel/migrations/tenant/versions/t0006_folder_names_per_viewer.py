"""folder names unique among the folders one person sees, not globally

A global unique constraint on ``folders.name`` told an uncleared manager that a confidential
folder of that name existed; the service now checks names among visible folders only.

Revision ID: t0006
Revises: t0005
Create Date: 2026-12-01 10:20:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = 't0006'
down_revision: str | None = 't0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('folders', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_folders_name'), type_='unique')


def downgrade() -> None:
    with op.batch_alter_table('folders', schema=None) as batch_op:
        batch_op.create_unique_constraint(batch_op.f('uq_folders_name'), ['name'])
