"""erasure ledger: which tenant user was erased, under which pseudonym (no personal data)

Revision ID: p0009
Revises: p0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'p0009'
down_revision: str | None = 'p0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('erasures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_uid', sa.String(length=36), nullable=False),
    sa.Column('tenant_user_id', sa.Integer(), nullable=False),
    sa.Column('pseudonym', sa.String(length=16), nullable=False),
    sa.Column('erased_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_erasures')),
    sa.UniqueConstraint('tenant_uid', 'tenant_user_id', name='uq_erasures_tenant_user')
    )
    with op.batch_alter_table('erasures', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_erasures_tenant_uid'), ['tenant_uid'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('erasures', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_erasures_tenant_uid'))
    op.drop_table('erasures')
