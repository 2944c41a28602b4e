"""Every tenant-database model, imported so ``TenantBase.metadata`` is complete."""

from qalitel.my_data.models import ErasureRequest, LoginEvent
from qalitel.notifications.models import (
    Notification,
    NotificationPreference,
    NotificationSettings,
)
from qalitel.records.files.models import ActionHistory, Attachment
from qalitel.records.models import NonConformity
from qalitel.reports.models import Branding
from qalitel.users.models import Group, User, UserGroup
from tenants.schema import TenantBase, TenantIdentity

__all__ = ["ActionHistory", "Attachment", "Branding", "ErasureRequest", "Group", "LoginEvent",
           "NonConformity", "Notification", "NotificationPreference", "NotificationSettings",
           "TenantBase", "TenantIdentity", "User", "UserGroup"]
