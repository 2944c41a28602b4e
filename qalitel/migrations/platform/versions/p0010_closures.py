"""closures: a closed tenant's timeline on its registry row, and the deletion records

Revision ID: p0010
Revises: p0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'p0010'
down_revision: str | None = 'p0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT_COLUMNS = ('closed_at', 'closure_reason', 'grace_ends_at', 'dropped_at', 'purge_due_at',
                  'purged_at')


def upgrade() -> None:
    # Plain ADD COLUMN on both backends (SQLite has it): recreating ``tenants`` would cascade.
    op.add_column('tenants', sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('tenants', sa.Column('closure_reason', sa.Text(), nullable=True))
    op.add_column('tenants', sa.Column('grace_ends_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('tenants', sa.Column('dropped_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('tenants', sa.Column('purge_due_at', sa.Date(), nullable=True))
    op.add_column('tenants', sa.Column('purged_at', sa.DateTime(timezone=True), nullable=True))
    op.create_table('deletion_records',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_uid', sa.String(length=36), nullable=False),
    sa.Column('tenant_slug', sa.String(length=40), nullable=False),
    sa.Column('backend', sa.String(length=20), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('purge_due_at', sa.Date(), nullable=False),
    sa.Column('dropped_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('backups_expired_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('purged_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deletion_records')),
    sa.UniqueConstraint('tenant_uid', name=op.f('uq_deletion_records_tenant_uid'))
    )
    op.create_table('deletion_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('record_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('database', 'role', 'grant-role', 'files', 'access-log', 'backup-copy', 'target-folder', name='itemkind', native_enum=False, length=20), nullable=False),
    sa.Column('name', sa.String(length=1000), nullable=False),
    sa.Column('place', sa.String(length=1000), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('size', sa.BigInteger(), nullable=True),
    sa.Column('count', sa.Integer(), nullable=True),
    sa.Column('removed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('removed_by', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['record_id'], ['deletion_records.id'], name=op.f('fk_deletion_items_record_id_deletion_records'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deletion_items'))
    )
    op.create_index(op.f('ix_deletion_items_record_id'), 'deletion_items', ['record_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_deletion_items_record_id'), table_name='deletion_items')
    op.drop_table('deletion_items')
    op.drop_table('deletion_records')
    for name in reversed(TENANT_COLUMNS):
        op.drop_column('tenants', name)
