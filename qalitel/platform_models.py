"""Every platform-database model, imported so the platform metadata is complete."""

from backups.models import Backup, BackupCopy
from core.db import PlatformBase
from maintenance.models import AccessLogEntry, Grant, MaintenanceRequest, StaffUser
from qalitel.exports.models import DataExport
from tenants.registry import DatabaseServer, MigrationLedger, Tenant

__all__ = ["AccessLogEntry", "Backup", "BackupCopy", "DataExport", "DatabaseServer", "Grant",
           "MaintenanceRequest", "MigrationLedger", "PlatformBase", "StaffUser", "Tenant"]
