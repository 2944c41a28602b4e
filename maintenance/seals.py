"""HMAC seals of the access log's heads and purge records.

Keys are derived from the platform encryption key (``QALITEL_ENCRYPTION_KEY``, never stored
in the database; every comma-separated key is accepted, the first one seals), one context per
kind of record so that a seal of one kind never passes for another.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from core import config

HEAD_CONTEXT = b"qalitel access-log head seal\x00"
PURGE_CONTEXT = b"qalitel access-log purge seal\x00"


class SealKeyError(RuntimeError):
    """No encryption key to seal with."""


def _keys(context: bytes) -> list[bytes]:
    keys = [k.strip() for k in config.settings().encryption_key.split(",") if k.strip()]
    if not keys:
        raise SealKeyError("no encryption key configured to seal the access log")
    return [hashlib.sha256(context + key.encode()).digest() for key in keys]


def _message(fields: dict[str, Any]) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


def _sign(context: bytes, fields: dict[str, Any]) -> str:
    return hmac.new(_keys(context)[0], _message(fields), hashlib.sha256).hexdigest()


def _check(context: bytes, fields: dict[str, Any], value: str) -> bool:
    message = _message(fields)
    return any(hmac.compare_digest(hmac.new(key, message, hashlib.sha256).hexdigest(), value)
               for key in _keys(context))


def _head(tenant_uid: str, count: int, last_hash: str) -> dict[str, Any]:
    return {"tenant_uid": tenant_uid, "entry_count": count, "last_hash": last_hash}


def seal(tenant_uid: str, count: int, last_hash: str) -> str:
    """The seal of a head: ``count`` entries ending at ``last_hash``."""
    return _sign(HEAD_CONTEXT, _head(tenant_uid, count, last_hash))


def seal_ok(tenant_uid: str, count: int, last_hash: str, value: str) -> bool:
    return _check(HEAD_CONTEXT, _head(tenant_uid, count, last_hash), value)


def _purge(tenant_uid: str, slug: str, count: int, last_hash: str, chain_ok: bool,
           purged_at: str) -> dict[str, Any]:
    return {"tenant_uid": tenant_uid, "tenant_slug": slug, "entry_count": count,
            "last_hash": last_hash, "chain_ok": chain_ok, "purged_at": purged_at}


def purge_seal(tenant_uid: str, slug: str, count: int, last_hash: str, chain_ok: bool,
               purged_at: str) -> str:
    return _sign(PURGE_CONTEXT, _purge(tenant_uid, slug, count, last_hash, chain_ok,
                                       purged_at))


def purge_seal_ok(row: Any) -> bool:
    """Whether a purge record (any object with the record's attributes) carries its seal."""
    return _check(PURGE_CONTEXT, _purge(row.tenant_uid, row.tenant_slug, row.entry_count,
                                        row.last_hash, bool(row.chain_ok), row.purged_at),
                  row.seal)
