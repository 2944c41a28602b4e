"""Staff accounts and maintenance access (see the maintenance-access issue)."""
