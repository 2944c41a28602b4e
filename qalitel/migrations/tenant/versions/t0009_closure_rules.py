"""Closure rules: the unfounded outcome, justifications of status changes, planned
effectiveness checks (date, criteria) and the tenant's workflow rules

Revision ID: t0009_closure_rules
Revises: t0008
Create Date: 2026-12-01 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 't0009_closure_rules'
down_revision: str | None = 't0011_search_text'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_STATUSES = "status IN ('open', 'analysis', 'treatment', 'verification', 'closed')"
NEW_STATUSES = ("status IN ('open', 'analysis', 'treatment', 'verification', 'closed', "
                "'unfounded')")


def upgrade() -> None:
    # Existing rows keep their status (closed records stay closed, now read-only), get no
    # justification and no planned check (NULL); no workflow rule row means the defaults.
    op.create_table('workflow_rules',
    sa.Column('to_status', sa.String(length=20), nullable=False),
    sa.Column('allowed', sa.String(length=20), nullable=False),
    sa.Column('updated_by_id', sa.Integer(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.CheckConstraint("allowed IN ('assignee', 'manager')", name=op.f('ck_workflow_rules_allowed')),
    sa.CheckConstraint("to_status IN ('analysis', 'treatment', 'verification', 'closed', 'unfounded', 'reopen')", name=op.f('ck_workflow_rules_to_status')),
    sa.ForeignKeyConstraint(['updated_by_id'], ['users.id'], name=op.f('fk_workflow_rules_updated_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('to_status', 'allowed', name=op.f('pk_workflow_rules'))
    )
    # Plain ADD COLUMN (nullable) on both backends for the populated tables.
    op.add_column('nonconformity_status_changes', sa.Column('justification', sa.Text(), nullable=True))
    op.add_column('actions', sa.Column('effectiveness_due_on', sa.Date(), nullable=True))
    op.add_column('actions', sa.Column('effectiveness_criteria', sa.Text(), nullable=True))
    # A CHECK constraint changes only by rebuilding the table on SQLite (batch mode; foreign
    # keys are not enforced during upgrades, so the rebuild cascades nothing).
    with op.batch_alter_table('nonconformities', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_nonconformities_status'), type_='check')
        batch_op.create_check_constraint(op.f('ck_nonconformities_status'), NEW_STATUSES)


def downgrade() -> None:
    # Unfounded records come back as closed: the outcome the older schema knows.
    op.execute("UPDATE nonconformities SET status = 'closed' WHERE status = 'unfounded'")
    with op.batch_alter_table('nonconformities', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_nonconformities_status'), type_='check')
        batch_op.create_check_constraint(op.f('ck_nonconformities_status'), OLD_STATUSES)
    with op.batch_alter_table('actions', schema=None) as batch_op:
        batch_op.drop_column('effectiveness_criteria')
        batch_op.drop_column('effectiveness_due_on')
    with op.batch_alter_table('nonconformity_status_changes', schema=None) as batch_op:
        batch_op.drop_column('justification')
    op.drop_table('workflow_rules')
