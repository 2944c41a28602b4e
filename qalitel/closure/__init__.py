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
Import from the modules (``service``, ``job``, ``mail``, ``record``): this package imports
nothing, so registering the closure mail's hook at start-up loads none of it.
"""
