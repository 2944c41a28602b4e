"""A user's rights over their own data: access (the personal export), rectification and
erasure (per-user pseudonyms, replayed after a backup restore)."""
