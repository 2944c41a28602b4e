"""record fields: tenant-managed lists (catalog_entries), product or process, lot, quantity
and unit, customer or supplier, immediate action, cost of non-quality on non-conformities,
and their structured cause analysis (nonconformity_analyses)

Revision ID: t0012_record_fields
Revises: t0008
Create Date: 2026-12-01 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 't0012_record_fields'
down_revision: str | None = 't0010_notifications'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CAUSES = "'method', 'machine', 'material', 'manpower', 'measurement', 'environment'"


def upgrade() -> None:
    op.create_table('catalog_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('archived', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.CheckConstraint("kind IN ('product', 'process', 'customer', 'supplier')", name=op.f('ck_catalog_entries_kind')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_catalog_entries')),
    sa.UniqueConstraint('kind', 'name', name='uq_catalog_entries_kind_name')
    )
    # Existing records get empty texts and NULLs: nothing to backfill.
    with op.batch_alter_table('nonconformities', schema=None) as batch_op:
        batch_op.add_column(sa.Column('product_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('lot', sa.String(length=60), server_default='', nullable=False))
        batch_op.add_column(sa.Column('quantity', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('quantity_unit', sa.String(length=20), server_default='', nullable=False))
        batch_op.add_column(sa.Column('partner_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('immediate_action', sa.Text(), server_default='', nullable=False))
        batch_op.add_column(sa.Column('nq_cost', sa.BigInteger(), nullable=True))
        batch_op.create_index(batch_op.f('ix_nonconformities_product_id'), ['product_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_nonconformities_partner_id'), ['partner_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_nonconformities_product_id_catalog_entries'), 'catalog_entries', ['product_id'], ['id'], ondelete='RESTRICT')
        batch_op.create_foreign_key(batch_op.f('fk_nonconformities_partner_id_catalog_entries'), 'catalog_entries', ['partner_id'], ['id'], ondelete='RESTRICT')
    op.create_table('nonconformity_analyses',
    sa.Column('record_id', sa.Integer(), nullable=False),
    *[sa.Column(f'{part}_{i}', sa.Text(), server_default='', nullable=False)
      for i in range(1, 6) for part in ('why', 'because')],
    *[sa.Column(f'ishikawa_{c}', sa.Text(), server_default='', nullable=False)
      for c in ('method', 'machine', 'material', 'manpower', 'measurement', 'environment')],
    sa.Column('main_cause', sa.String(length=20), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.CheckConstraint(f"main_cause IS NULL OR main_cause IN ({CAUSES})", name=op.f('ck_nonconformity_analyses_main_cause')),
    sa.ForeignKeyConstraint(['record_id'], ['nonconformities.id'], name=op.f('fk_nonconformity_analyses_record_id_nonconformities'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('record_id', name=op.f('pk_nonconformity_analyses'))
    )
    with op.batch_alter_table('nonconformity_analyses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_nonconformity_analyses_main_cause'), ['main_cause'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('nonconformity_analyses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_nonconformity_analyses_main_cause'))
    op.drop_table('nonconformity_analyses')
    with op.batch_alter_table('nonconformities', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_nonconformities_partner_id_catalog_entries'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_nonconformities_product_id_catalog_entries'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_nonconformities_partner_id'))
        batch_op.drop_index(batch_op.f('ix_nonconformities_product_id'))
        batch_op.drop_column('nq_cost')
        batch_op.drop_column('immediate_action')
        batch_op.drop_column('partner_id')
        batch_op.drop_column('quantity_unit')
        batch_op.drop_column('quantity')
        batch_op.drop_column('lot')
        batch_op.drop_column('product_id')
    op.drop_table('catalog_entries')
