"""Every platform-database model, imported so the platform metadata is complete."""

from qalitel.extensions import PlatformBase
from tenants.registry import DatabaseServer, MigrationLedger, Tenant

__all__ = ["DatabaseServer", "MigrationLedger", "PlatformBase", "Tenant"]
