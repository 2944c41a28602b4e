"""scheduled jobs: leases (job_locks) and the ledger of runs (job_runs)

Revision ID: p0007
Revises: p0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'p0007'
down_revision: str | None = 'p0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('job_locks',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('holder', sa.String(length=200), nullable=False),
    sa.Column('acquired_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_job_locks'))
    )
    op.create_table('job_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job', sa.String(length=100), nullable=False),
    sa.Column('holder', sa.String(length=200), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('duration_seconds', sa.Float(), nullable=True),
    sa.Column('outcome', sa.Enum('running', 'ok', 'failed', 'skipped', name='outcome', native_enum=False, length=20), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('summary', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_job_runs'))
    )
    op.create_index(op.f('ix_job_runs_job'), 'job_runs', ['job'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_job_runs_job'), table_name='job_runs')
    op.drop_table('job_runs')
    op.drop_table('job_locks')
