"""Files attached to non-conformities and actions: the rows (``models``), the writes
(``service``) and the pages (``views``); the bytes go to ``core.filestore``."""
