"""Every tenant-database model, imported so ``TenantBase.metadata`` is complete."""

from qalitel.records.models import NonConformity
from qalitel.users.models import User
from tenants.schema import TenantBase, TenantIdentity

__all__ = ["NonConformity", "TenantBase", "TenantIdentity", "User"]
