"""branding: the tenant's logo, carried by its PDF reports

Revision ID: t0013_branding
Revises: t0008
Create Date: 2026-12-01 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 't0013_branding'
down_revision: str | None = 't0012_record_fields'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('branding',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('logo', sa.LargeBinary(), nullable=False),
    sa.Column('logo_kind', sa.String(length=10), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.CheckConstraint('id = 1', name=op.f('ck_branding_single_row')),
    sa.CheckConstraint("logo_kind IN ('png', 'jpeg')", name=op.f('ck_branding_logo_kind')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_branding'))
    )


def downgrade() -> None:
    op.drop_table('branding')
