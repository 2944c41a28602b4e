"""The one door to the personal export, for the page. Until the background export machinery
(``data_exports``, ``register_export_kind``) is merged, the archive is built synchronously
here; the integrator switches this function to queue a ``personal`` export job instead
(:func:`build_personal` is the builder to register)."""

from __future__ import annotations

import io
from typing import Any

from qalitel.my_data.archive import personal_zip
from qalitel.my_data.collect import personal_data
from tenants.context import current_tenant, tdb


def build_personal(user_id: int, prefs: dict[str, Any] | None = None) -> bytes:
    """The ZIP of everything the current tenant holds about ``user_id``."""
    tenant = current_tenant()
    data = personal_data(tdb, user_id, prefs, tenant.uid)
    out = io.BytesIO()
    personal_zip(data, out, tenant=tenant.slug, user_id=user_id)
    return out.getvalue()


def request_personal_export(user_id: int, prefs: dict[str, Any] | None = None
                            ) -> tuple[str, bytes]:
    """What the "download my data" button gets: a file name and the archive's bytes."""
    return f"my-data-{current_tenant().slug}-{user_id}.zip", build_personal(user_id, prefs)
