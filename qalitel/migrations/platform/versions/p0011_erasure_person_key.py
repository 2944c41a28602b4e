"""erasures.person_key: the ledger names a person by a keyed hash, not by a reusable id

Revision ID: p0011
Revises: p0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'p0011'
down_revision: str | None = 'p0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('erasures', schema=None) as batch_op:
        batch_op.add_column(sa.Column('person_key', sa.String(length=64), nullable=True))
        batch_op.drop_constraint('uq_erasures_tenant_user', type_='unique')
        batch_op.create_unique_constraint('uq_erasures_tenant_person',
                                          ['tenant_uid', 'person_key'])


def downgrade() -> None:
    with op.batch_alter_table('erasures', schema=None) as batch_op:
        batch_op.drop_constraint('uq_erasures_tenant_person', type_='unique')
        batch_op.create_unique_constraint('uq_erasures_tenant_user',
                                          ['tenant_uid', 'tenant_user_id'])
        batch_op.drop_column('person_key')
