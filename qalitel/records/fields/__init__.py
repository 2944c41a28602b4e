"""A non-conformity's descriptive fields (product or process, lot, quantity, customer or
supplier, immediate action, cost of non-quality), the tenant-managed lists they pick from,
the structured cause analysis (5 Whys, Ishikawa grid) and the dashboard's indicators."""
