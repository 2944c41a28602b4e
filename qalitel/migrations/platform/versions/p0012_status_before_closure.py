"""status before closure: a reopened tenant gets back the status it was closed from

Revision ID: p0012
Revises: p0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'p0012'
down_revision: str | None = 'p0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('tenants', sa.Column('status_before_closure', sa.Enum('provisioning', 'active', 'suspended', 'closed', name='tenantstatus', native_enum=False, length=20), nullable=True))


def downgrade() -> None:
    op.drop_column('tenants', 'status_before_closure')
