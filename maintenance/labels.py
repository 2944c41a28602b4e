"""What people read for a scope, a request status and a grant state (client and staff pages)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from maintenance.models import RequestStatus, Scope

SCOPE_LABELS = {Scope.READ: _l("read only"), Scope.READ_WRITE: _l("read and write")}
STATUS_LABELS = {RequestStatus.PENDING: _l("awaiting your decision"),
                 RequestStatus.APPROVED: _l("approved"), RequestStatus.DENIED: _l("denied"),
                 RequestStatus.EXPIRED: _l("expired unanswered")}
STATE_LABELS = {"active": _l("active"), "expired": _l("ended"), "revoked": _l("revoked"),
                "not-started": _l("not started")}
