"""Every platform-database model, imported so the platform metadata is complete."""

from backups.models import Backup, BackupCopy
from core.db import PlatformBase
from core.jobs.models import JobLock, JobRun
from maintenance.models import AccessLogEntry, Grant, MaintenanceRequest, StaffUser
from qalitel.exports.models import DataExport
from qalitel.my_data.ledger import Erasure
from tenants.deletion import DeletionItem, DeletionRecord
from tenants.registry import DatabaseServer, MigrationLedger, Tenant

__all__ = ["AccessLogEntry", "Backup", "BackupCopy", "DataExport", "DatabaseServer",
           "DeletionItem", "DeletionRecord", "Erasure", "Grant", "JobLock", "JobRun",
           "MaintenanceRequest", "MigrationLedger", "PlatformBase", "StaffUser", "Tenant"]
