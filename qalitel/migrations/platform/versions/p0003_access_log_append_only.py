"""access log: per-tenant sealed head, append-only triggers

The database itself refuses ``UPDATE`` and ``DELETE`` (and, on PostgreSQL, ``TRUNCATE``) on
``access_log``; ``access_log_heads`` refuses ``DELETE`` and any ``UPDATE`` that does not move a
tenant's head forward by exactly one entry. Someone with DDL rights can still drop or disable
the triggers: the hash chain and the sealed head (``maintenance.audit``) are what detect that.

Beware: an Alembic batch operation on SQLite rebuilds a table and loses its triggers; a later
revision altering these tables must create the triggers again (tests/test_audit.py checks
they are present at head).

Revision ID: p0003
Revises: p0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'p0003'
down_revision: str | None = 'p0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE_TRIGGERS = (
    """CREATE TRIGGER access_log_no_update BEFORE UPDATE ON access_log
    BEGIN SELECT RAISE(ABORT, 'access_log is append-only: UPDATE refused'); END""",
    """CREATE TRIGGER access_log_no_delete BEFORE DELETE ON access_log
    BEGIN SELECT RAISE(ABORT, 'access_log is append-only: DELETE refused'); END""",
    """CREATE TRIGGER access_log_heads_no_delete BEFORE DELETE ON access_log_heads
    BEGIN SELECT RAISE(ABORT, 'access_log_heads: DELETE refused'); END""",
    """CREATE TRIGGER access_log_heads_forward_only BEFORE UPDATE ON access_log_heads
    WHEN NEW.tenant_id <> OLD.tenant_id OR NEW.entry_count <> OLD.entry_count + 1
    BEGIN SELECT RAISE(ABORT, 'access_log_heads: a head only moves forward by one entry'); END""",
)

PG_TRIGGERS = (
    """CREATE FUNCTION access_log_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'access_log is append-only: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END $$""",
    """CREATE FUNCTION access_log_heads_guard() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'UPDATE' AND NEW.tenant_id = OLD.tenant_id
                AND NEW.entry_count = OLD.entry_count + 1 THEN
            RETURN NEW;
        END IF;
        RAISE EXCEPTION 'access_log_heads: % refused (a head only moves forward by one entry)',
            TG_OP USING ERRCODE = 'insufficient_privilege';
    END $$""",
    """CREATE TRIGGER access_log_no_update BEFORE UPDATE ON access_log
    FOR EACH ROW EXECUTE FUNCTION access_log_refuse()""",
    """CREATE TRIGGER access_log_no_delete BEFORE DELETE ON access_log
    FOR EACH ROW EXECUTE FUNCTION access_log_refuse()""",
    """CREATE TRIGGER access_log_no_truncate BEFORE TRUNCATE ON access_log
    FOR EACH STATEMENT EXECUTE FUNCTION access_log_refuse()""",
    """CREATE TRIGGER access_log_heads_no_delete BEFORE DELETE ON access_log_heads
    FOR EACH ROW EXECUTE FUNCTION access_log_heads_guard()""",
    """CREATE TRIGGER access_log_heads_forward_only BEFORE UPDATE ON access_log_heads
    FOR EACH ROW EXECUTE FUNCTION access_log_heads_guard()""",
    """CREATE TRIGGER access_log_heads_no_truncate BEFORE TRUNCATE ON access_log_heads
    FOR EACH STATEMENT EXECUTE FUNCTION access_log_heads_guard()""",
)


def upgrade() -> None:
    op.create_table(
        'access_log_heads',
        sa.Column('tenant_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('entry_count', sa.Integer(), nullable=False),
        sa.Column('last_hash', sa.String(length=64), nullable=False),
        sa.Column('seal', sa.String(length=64), nullable=False),
        sa.Column('updated_at', sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'],
                                name=op.f('fk_access_log_heads_tenant_id_tenants'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('tenant_id', name=op.f('pk_access_log_heads')),
    )
    statements = PG_TRIGGERS if op.get_bind().dialect.name == "postgresql" else SQLITE_TRIGGERS
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for trigger, table in (("access_log_no_update", "access_log"),
                               ("access_log_no_delete", "access_log"),
                               ("access_log_no_truncate", "access_log"),
                               ("access_log_heads_no_delete", "access_log_heads"),
                               ("access_log_heads_forward_only", "access_log_heads"),
                               ("access_log_heads_no_truncate", "access_log_heads")):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
        op.drop_table('access_log_heads')
        op.execute("DROP FUNCTION IF EXISTS access_log_refuse()")
        op.execute("DROP FUNCTION IF EXISTS access_log_heads_guard()")
        return
    for trigger in ("access_log_no_update", "access_log_no_delete"):
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    op.drop_table('access_log_heads')
