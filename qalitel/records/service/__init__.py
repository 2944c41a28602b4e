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
    RecordLocked,
    assignable_users,
    ensure_writable,
    is_locked,
    list_choices,
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
    create_nonconformity,
    current_values,
    record_version,
    share_record,
    unshare_record,
    update_nonconformity,
)
from qalitel.records.service.workflow import (
    JUSTIFICATION_MAX,
    change_status,
    closure_gaps,
    refusal,
    reopen,
    save_rules,
    step_label,
)

__all__ = ["ACTION_FIELDS", "EDITABLE", "JUSTIFICATION_MAX", "EditConflict",
           "PermissionDenied", "RecordError", "RecordLocked", "action_values",
           "action_version", "assignable_users", "change_status", "check_effectiveness",
           "closure_gaps", "create_action", "create_folder", "create_nonconformity",
           "current_values", "ensure_writable", "grant_clearance", "is_locked", "list_choices",
           "record_version", "refusal", "reopen", "revoke_clearance", "save_rules", "share_record",
           "step_label", "today", "unshare_record", "update_action", "update_folder",
           "update_nonconformity", "usable_folders"]
