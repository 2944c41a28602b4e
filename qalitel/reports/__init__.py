"""Reports: a non-conformity as a PDF, its 8D report, and the tenant's logo they carry."""
