"""backup catalogue: one row per archive, one per copy of it on a target

Revision ID: p0006
Revises: p0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'p0006'
down_revision: str | None = 'p0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('backups',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_uid', sa.String(length=36), nullable=False),
    sa.Column('tenant_slug', sa.String(length=40), nullable=False),
    sa.Column('backend', sa.String(length=20), nullable=False),
    sa.Column('status', sa.Enum('running', 'complete', 'partial', 'failed', 'pruned', name='backupstatus', native_enum=False, length=20), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('schema_revision', sa.String(length=64), nullable=True),
    sa.Column('key', sa.String(length=255), nullable=True),
    sa.Column('size', sa.BigInteger(), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('deep_verified_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('deep_result', sa.Text(), nullable=True),
    sa.Column('pruned_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_backups'))
    )
    op.create_index(op.f('ix_backups_tenant_uid'), 'backups', ['tenant_uid'], unique=False)
    op.create_table('backup_copies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('backup_id', sa.Integer(), nullable=False),
    sa.Column('target', sa.String(length=1000), nullable=False),
    sa.Column('status', sa.Enum('ok', 'failed', 'pruned', name='copystatus', native_enum=False, length=20), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('written_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('checked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('check_result', sa.String(length=200), nullable=True),
    sa.Column('pruned_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['backup_id'], ['backups.id'], name=op.f('fk_backup_copies_backup_id_backups'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_backup_copies')),
    sa.UniqueConstraint('backup_id', 'target', name=op.f('uq_backup_copies_backup_id'))
    )
    op.create_index(op.f('ix_backup_copies_backup_id'), 'backup_copies', ['backup_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_backup_copies_backup_id'), table_name='backup_copies')
    op.drop_table('backup_copies')
    op.drop_index(op.f('ix_backups_tenant_uid'), table_name='backups')
    op.drop_table('backups')
