"""data exports: background exports (a tenant's full archive, a user's personal data)

Revision ID: p0008
Revises: p0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'p0008'
down_revision: str | None = 'p0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('data_exports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=True),
    sa.Column('tenant_uid', sa.String(length=36), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('subject_user_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.Enum('pending', 'running', 'ready', 'failed', 'expired', name='exportstate', native_enum=False, length=20), nullable=False),
    sa.Column('active_key', sa.String(length=120), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('file_path', sa.String(length=1000), nullable=True),
    sa.Column('file_size', sa.BigInteger(), nullable=True),
    sa.Column('file_sha256', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_data_exports')),
    sa.UniqueConstraint('active_key', name=op.f('uq_data_exports_active_key')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_data_exports_token_hash'))
    )
    op.create_index(op.f('ix_data_exports_tenant_uid'), 'data_exports', ['tenant_uid'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_data_exports_tenant_uid'), table_name='data_exports')
    op.drop_table('data_exports')
