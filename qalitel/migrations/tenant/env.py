"""Alembic environment: the runner hands over a connection and the target metadata.

There is no ``alembic.ini`` and no URL here on purpose: tenant databases are reached only
through ``qalitel tenants migrate`` (as each tenant's own role), the platform database through
``qalitel init``. The connection arrives inside a transaction the runner commits.
"""

from alembic import context

config = context.config
connection = config.attributes.get("connection")
target_metadata = config.attributes.get("target_metadata")
if connection is None or target_metadata is None:
    raise RuntimeError("this Alembic environment runs only from tenants.migrations, which hands "
                       "it a connection: use `qalitel tenants migrate` or `qalitel init`")

context.configure(
    connection=connection,
    target_metadata=target_metadata,
    render_as_batch=True,
    compare_type=True,
    transaction_per_migration=False,
)

with context.begin_transaction():
    context.run_migrations()
