"""Tenancy: registry, provisioning, resolution, engine cache and migrations."""
