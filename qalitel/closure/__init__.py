"""A client leaves: closure with a purge date given in advance, reopening during the grace
period, the drop of the live data after it, the purge of every backup copy as its window
ends, and the signed proof of deletion.

- :func:`close_tenant` / :func:`reopen_tenant` (``qalitel tenants close|reopen``);
- :func:`run_closures`, the one job ``jobs run-due`` runs: drops tenants whose grace ended,
  deletes backup copies whose window ended, marks the purge done, all written to the
  tenant's :class:`tenants.deletion.DeletionRecord`;
- :mod:`qalitel.closure.record`: the record as JSON and as a signed text.

It sits in the app because it drives every layer below: the registry and the drop
(``tenants``), maintenance access (``maintenance.departure``) and backups (``backups.prune``).
"""

from qalitel.closure.job import run_closures
from qalitel.closure.mail import on_closure_export_link
from qalitel.closure.service import ClosureError, close_tenant, purge_date, reopen_tenant

__all__ = ["ClosureError", "close_tenant", "on_closure_export_link", "purge_date",
           "reopen_tenant", "run_closures"]
