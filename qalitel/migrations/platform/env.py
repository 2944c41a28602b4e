"""Alembic environment: see ``tenants.migrations.run_environment``."""

from tenants.migrations import run_environment

run_environment()
