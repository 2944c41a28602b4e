"""access log: a closed tenant's log may be purged, nobody else's

The privacy policy promises that a departed client's data is deleted. The append-only
triggers of p0003 refused every DELETE; now a DELETE of ``access_log`` or
``access_log_heads`` rows is allowed only for a tenant whose registry status is
``closed`` (set first, in the same transaction, by ``tenants.provisioning.destroy_tenant``).
UPDATE stays refused, and the head still only moves forward by one entry.

Revision ID: p0004
Revises: p0003
"""

from collections.abc import Sequence

from alembic import op

revision: str = 'p0004'
down_revision: str | None = 'p0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CLOSED = "(SELECT status FROM tenants WHERE id = OLD.tenant_id) IS NOT 'closed'"

SQLITE_UP = (
    "DROP TRIGGER IF EXISTS access_log_no_delete",
    "DROP TRIGGER IF EXISTS access_log_heads_no_delete",
    f"""CREATE TRIGGER access_log_no_delete BEFORE DELETE ON access_log
    WHEN {CLOSED}
    BEGIN SELECT RAISE(ABORT, 'access_log is append-only: DELETE refused'); END""",
    f"""CREATE TRIGGER access_log_heads_no_delete BEFORE DELETE ON access_log_heads
    WHEN {CLOSED}
    BEGIN SELECT RAISE(ABORT, 'access_log_heads: DELETE refused'); END""",
)

SQLITE_DOWN = (
    "DROP TRIGGER IF EXISTS access_log_no_delete",
    "DROP TRIGGER IF EXISTS access_log_heads_no_delete",
    """CREATE TRIGGER access_log_no_delete BEFORE DELETE ON access_log
    BEGIN SELECT RAISE(ABORT, 'access_log is append-only: DELETE refused'); END""",
    """CREATE TRIGGER access_log_heads_no_delete BEFORE DELETE ON access_log_heads
    BEGIN SELECT RAISE(ABORT, 'access_log_heads: DELETE refused'); END""",
)

PG_UP = (
    """CREATE OR REPLACE FUNCTION access_log_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'DELETE' AND (SELECT status FROM tenants WHERE id = OLD.tenant_id)
                = 'closed' THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION 'access_log is append-only: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END $$""",
    """CREATE OR REPLACE FUNCTION access_log_heads_guard() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'UPDATE' AND NEW.tenant_id = OLD.tenant_id
                AND NEW.entry_count = OLD.entry_count + 1 THEN
            RETURN NEW;
        END IF;
        IF TG_OP = 'DELETE' AND (SELECT status FROM tenants WHERE id = OLD.tenant_id)
                = 'closed' THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION 'access_log_heads: % refused (a head only moves forward by one entry)',
            TG_OP USING ERRCODE = 'insufficient_privilege';
    END $$""",
)

PG_DOWN = (
    """CREATE OR REPLACE FUNCTION access_log_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'access_log is append-only: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END $$""",
    """CREATE OR REPLACE FUNCTION access_log_heads_guard() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'UPDATE' AND NEW.tenant_id = OLD.tenant_id
                AND NEW.entry_count = OLD.entry_count + 1 THEN
            RETURN NEW;
        END IF;
        RAISE EXCEPTION 'access_log_heads: % refused (a head only moves forward by one entry)',
            TG_OP USING ERRCODE = 'insufficient_privilege';
    END $$""",
)


def _run(pg: Sequence[str], sqlite: Sequence[str]) -> None:
    for statement in pg if op.get_bind().dialect.name == "postgresql" else sqlite:
        op.execute(statement)


def upgrade() -> None:
    _run(PG_UP, SQLITE_UP)


def downgrade() -> None:
    _run(PG_DOWN, SQLITE_DOWN)
