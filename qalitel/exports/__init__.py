"""Exports: the client's full archive of its tenant (``qalitel tenants export|import`` and the
admin page) and the background-export machinery every kind of export uses (``jobs``)."""
