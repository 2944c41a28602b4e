"""Every platform-database model, imported so the platform metadata is complete."""

from maintenance.models import AccessLogEntry, Grant, MaintenanceRequest, StaffUser
from qalitel.extensions import PlatformBase
from tenants.registry import DatabaseServer, MigrationLedger, Tenant

__all__ = ["AccessLogEntry", "DatabaseServer", "Grant", "MaintenanceRequest", "MigrationLedger",
           "PlatformBase", "StaffUser", "Tenant"]
