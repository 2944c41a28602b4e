"""The bottom layer: settings, the platform database handle and model bases, crypto, the
clock, validation and mail. It imports nothing of ``tenants``, ``maintenance``, ``backups`` or
``qalitel``."""
