"""Alembic environment: the runner hands over a connection and the target metadata."""

from alembic import context

config = context.config
connection = config.attributes["connection"]
target_metadata = config.attributes["target_metadata"]

context.configure(
    connection=connection,
    target_metadata=target_metadata,
    render_as_batch=True,
    compare_type=True,
    transaction_per_migration=False,
)

with context.begin_transaction():
    context.run_migrations()
