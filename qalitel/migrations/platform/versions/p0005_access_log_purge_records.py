"""access log: purges are recorded; no status lets a DELETE through any more

p0004 let anyone able to set a tenant's status to ``closed`` erase its log (close, delete,
reopen). Now ``access_log_purges`` keeps, per purged tenant, the sealed head it had when its
log went (``maintenance.purge``); the table itself is append-only. A DELETE of ``access_log``
rows is allowed only for entries a purge record of that very tenant (by ``uid``) covers, and a
DELETE of a head only where a purge record names exactly that head. Inserting a purge record
is an ordinary statement, but its HMAC seal needs the platform key, so a forged one is what
``qalitel audit verify`` reports, and it cannot be taken back.

Revision ID: p0005
Revises: p0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'p0005'
down_revision: str | None = 'p0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COVERED = ("EXISTS (SELECT 1 FROM access_log_purges p JOIN tenants t ON t.uid = p.tenant_uid "
           "WHERE t.id = OLD.tenant_id AND OLD.seq <= p.entry_count)")
HEAD_COVERED = ("EXISTS (SELECT 1 FROM access_log_purges p JOIN tenants t ON t.uid = p.tenant_uid "
                "WHERE t.id = OLD.tenant_id AND p.entry_count = OLD.entry_count "
                "AND p.last_hash = OLD.last_hash)")

SQLITE_UP = (
    "DROP TRIGGER IF EXISTS access_log_no_delete",
    "DROP TRIGGER IF EXISTS access_log_heads_no_delete",
    f"""CREATE TRIGGER access_log_no_delete BEFORE DELETE ON access_log
    WHEN NOT {COVERED}
    BEGIN SELECT RAISE(ABORT, 'access_log is append-only: DELETE refused'); END""",
    f"""CREATE TRIGGER access_log_heads_no_delete BEFORE DELETE ON access_log_heads
    WHEN NOT {HEAD_COVERED}
    BEGIN SELECT RAISE(ABORT, 'access_log_heads: DELETE refused'); END""",
    """CREATE TRIGGER access_log_purges_no_update BEFORE UPDATE ON access_log_purges
    BEGIN SELECT RAISE(ABORT, 'access_log_purges is append-only: UPDATE refused'); END""",
    """CREATE TRIGGER access_log_purges_no_delete BEFORE DELETE ON access_log_purges
    BEGIN SELECT RAISE(ABORT, 'access_log_purges is append-only: DELETE refused'); END""",
)

PG_UP = (
    f"""CREATE OR REPLACE FUNCTION access_log_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'DELETE' THEN
            IF {COVERED} THEN
                RETURN OLD;
            END IF;
        END IF;
        RAISE EXCEPTION 'access_log is append-only: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END $$""",
    f"""CREATE OR REPLACE FUNCTION access_log_heads_guard() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'UPDATE' AND NEW.tenant_id = OLD.tenant_id
                AND NEW.entry_count = OLD.entry_count + 1 THEN
            RETURN NEW;
        END IF;
        IF TG_OP = 'DELETE' THEN
            IF {HEAD_COVERED} THEN
                RETURN OLD;
            END IF;
        END IF;
        RAISE EXCEPTION 'access_log_heads: % refused (a head only moves forward by one entry)',
            TG_OP USING ERRCODE = 'insufficient_privilege';
    END $$""",
    """CREATE FUNCTION access_log_purges_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'access_log_purges is append-only: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END $$""",
    """CREATE TRIGGER access_log_purges_no_update BEFORE UPDATE ON access_log_purges
    FOR EACH ROW EXECUTE FUNCTION access_log_purges_refuse()""",
    """CREATE TRIGGER access_log_purges_no_delete BEFORE DELETE ON access_log_purges
    FOR EACH ROW EXECUTE FUNCTION access_log_purges_refuse()""",
    """CREATE TRIGGER access_log_purges_no_truncate BEFORE TRUNCATE ON access_log_purges
    FOR EACH STATEMENT EXECUTE FUNCTION access_log_purges_refuse()""",
)


def upgrade() -> None:
    op.create_table(
        'access_log_purges',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_uid', sa.String(length=36), nullable=False),
        sa.Column('tenant_slug', sa.String(length=40), nullable=False),
        sa.Column('entry_count', sa.Integer(), nullable=False),
        sa.Column('last_hash', sa.String(length=64), nullable=False),
        sa.Column('chain_ok', sa.Boolean(), nullable=False),
        sa.Column('purged_at', sa.String(length=40), nullable=False),
        sa.Column('seal', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_access_log_purges')),
        sa.UniqueConstraint('tenant_uid', name=op.f('uq_access_log_purges_tenant_uid')),
    )
    statements = PG_UP if op.get_bind().dialect.name == "postgresql" else SQLITE_UP
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "p0004", Path(__file__).with_name("p0004_access_log_purge_closed.py"))
    assert spec is not None and spec.loader is not None
    p0004 = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(p0004)
    if op.get_bind().dialect.name == "postgresql":
        for trigger in ("access_log_purges_no_update", "access_log_purges_no_delete",
                        "access_log_purges_no_truncate"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON access_log_purges")
        op.drop_table('access_log_purges')
        op.execute("DROP FUNCTION IF EXISTS access_log_purges_refuse()")
        for statement in p0004.PG_UP:
            op.execute(statement)
        return
    op.drop_table('access_log_purges')
    for statement in p0004.SQLITE_UP:
        op.execute(statement)
