"""Every platform-database model, imported so the platform metadata is complete."""

from backups.models import Backup, BackupCopy
from core.db import PlatformBase
from maintenance.models import AccessLogEntry, Grant, MaintenanceRequest, StaffUser
from qalitel.my_data.ledger import Erasure
from tenants.registry import DatabaseServer, MigrationLedger, Tenant

__all__ = ["AccessLogEntry", "Backup", "BackupCopy", "DatabaseServer", "Erasure", "Grant",
           "MaintenanceRequest", "MigrationLedger", "PlatformBase", "StaffUser", "Tenant"]
