"""What backups raise."""


class BackupConfigError(ValueError):
    """The backup configuration or the command's input cannot serve (nothing was started)."""


class TargetError(RuntimeError):
    """One target could not take or give back a copy."""


class BackupError(RuntimeError):
    """One tenant's archive could not be made (nothing of it was written to any target)."""


class ArchiveError(RuntimeError):
    """An archive cannot be read: wrong key, corrupt, truncated, or not a QALITEL backup."""
