"""Backups of every tenant: its database and files in one age-encrypted archive per run,
written to every configured target, catalogued in the platform database, and verified by
checksum on every target or, with ``--deep``, by restoring into a scratch database.

It stands beside ``maintenance``: it uses ``core`` and ``tenants``, never the app.
"""
