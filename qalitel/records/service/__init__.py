"""Writes on quality records: non-conformities, their workflow and shares, actions, folders.

Every function checks what it is given (lengths, enumerations, dates, that referenced users
and folders exist and may be used) and who asks, so a view that forgot a check cannot save
bad data. Failures raise :class:`RecordError` (a message for the person) or
:class:`PermissionDenied`. Functions flush and never commit: the request (or CLI command)
commits once, or rolls everything back (:mod:`qalitel.transaction`).
"""

from qalitel.records.service.actions import (
    ACTION_FIELDS,
    action_values,
    action_version,
    check_effectiveness,
    create_action,
    update_action,
)
from qalitel.records.service.checks import (
    PermissionDenied,
    RecordError,
    assignable_users,
    today,
    usable_folders,
)
from qalitel.records.service.concurrency import EditConflict
from qalitel.records.service.folders import (
    create_folder,
    grant_clearance,
    revoke_clearance,
    update_folder,
)
from qalitel.records.service.nonconformities import (
    EDITABLE,
    change_status,
    create_nonconformity,
    current_values,
    record_version,
    share_record,
    unshare_record,
    update_nonconformity,
)

__all__ = ["ACTION_FIELDS", "EDITABLE", "EditConflict", "PermissionDenied", "RecordError",
           "action_values", "action_version", "assignable_users", "change_status",
           "check_effectiveness", "create_action", "create_folder", "create_nonconformity",
           "current_values", "grant_clearance", "record_version", "revoke_clearance",
           "share_record", "today", "unshare_record", "update_action", "update_folder",
           "update_nonconformity", "usable_folders"]
