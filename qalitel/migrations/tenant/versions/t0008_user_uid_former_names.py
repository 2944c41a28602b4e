"""users.uid (a random id never reused, for the erasure ledger) and user_former_names

Revision ID: t0008
Revises: t0007
Create Date: 2026-12-01 12:30:00
"""

from collections.abc import Sequence
from datetime import UTC

import sqlalchemy as sa
from alembic import op

revision: str = 't0008'
down_revision: str | None = 't0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN on both backends: recreating ``users`` would cascade to every table.
    op.add_column('users', sa.Column('uid', sa.String(length=40), nullable=True))
    # Existing rows get a value derived from their id and creation time, not a random one:
    # an older backup of the same rows, restored and upgraded later, gets the same value, so
    # the erasure ledger still recognises the people it names.
    users = sa.table('users', sa.column('id', sa.Integer()),
                     sa.column('created_at', sa.DateTime(timezone=True)),
                     sa.column('uid', sa.String(40)))
    conn = op.get_bind()
    for uid, created in conn.execute(sa.select(users.c.id, users.c.created_at)).all():
        if created is not None and created.tzinfo is not None:
            created = created.astimezone(UTC)  # not the session's time zone
        stamp = created.strftime('%Y%m%d%H%M%S%f') if created is not None else 'x'
        conn.execute(users.update().where(users.c.id == uid)
                     .values(uid=f'legacy-{uid}-{stamp}'))
    op.create_index(op.f('ix_users_uid'), 'users', ['uid'], unique=True)
    op.create_table('user_former_names',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('replaced_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_user_former_names_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_former_names'))
    )
    with op.batch_alter_table('user_former_names', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_former_names_user_id'), ['user_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('user_former_names', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_former_names_user_id'))
    op.drop_table('user_former_names')
    op.drop_index(op.f('ix_users_uid'), table_name='users')
    op.drop_column('users', 'uid')
