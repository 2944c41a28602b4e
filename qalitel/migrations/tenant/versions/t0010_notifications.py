"""notification settings, preferences and the record of every notification mail

Revision ID: t0010_notifications
Revises: t0008
Create Date: 2026-12-01 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 't0010_notifications'
down_revision: str | None = 't0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _flag(name: str) -> sa.Column:
    return sa.Column(name, sa.Boolean(), server_default=sa.true(), nullable=False)


def upgrade() -> None:
    # New tables only: existing tenants read the defaults until an admin or a user saves.
    op.create_table('notification_settings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('due_soon_days', sa.Integer(), nullable=False),
    sa.Column('digest_weekday', sa.Integer(), nullable=False),
    _flag('assignment'), _flag('due_soon'), _flag('overdue'), _flag('digest'),
    sa.Column('updated_by_id', sa.Integer(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('id = 1', name=op.f('ck_notification_settings_single_row')),
    sa.CheckConstraint('due_soon_days BETWEEN 1 AND 60', name=op.f('ck_notification_settings_due_soon_days')),
    sa.CheckConstraint('digest_weekday BETWEEN 0 AND 6', name=op.f('ck_notification_settings_digest_weekday')),
    sa.ForeignKeyConstraint(['updated_by_id'], ['users.id'], name=op.f('fk_notification_settings_updated_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notification_settings'))
    )
    op.create_table('notification_preferences',
    sa.Column('user_id', sa.Integer(), nullable=False),
    _flag('assignment'), _flag('due_soon'), _flag('overdue'), _flag('digest'),
    sa.Column('due_soon_days', sa.Integer(), nullable=True),
    sa.CheckConstraint('due_soon_days BETWEEN 1 AND 60', name=op.f('ck_notification_preferences_due_soon_days')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_notification_preferences_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_notification_preferences'))
    )
    op.create_table('notifications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('object_type', sa.String(length=10), nullable=True),
    sa.Column('object_id', sa.Integer(), nullable=True),
    sa.Column('subject', sa.String(length=300), server_default='', nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('last_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("kind IN ('assignment', 'due_soon', 'overdue', 'digest')", name=op.f('ck_notifications_kind')),
    sa.CheckConstraint("status IN ('pending', 'sent', 'failed', 'skipped')", name=op.f('ck_notifications_status')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_notifications_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notifications')),
    sa.UniqueConstraint('key', name=op.f('uq_notifications_key'))
    )
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.create_index('ix_notifications_status_id', ['status', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_notifications_user_id'), ['user_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notifications_user_id'))
        batch_op.drop_index('ix_notifications_status_id')
    op.drop_table('notifications')
    op.drop_table('notification_preferences')
    op.drop_table('notification_settings')
