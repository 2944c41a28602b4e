"""A deletion record as a document: JSON, and a human-readable text signed with the
platform's Ed25519 key (:mod:`core.crypto`), which SCOQI sends the client.

The signature covers the exact UTF-8 bytes of the text above the ``BEGIN`` line. Checking it
without the app, with the PEM of ``qalitel tenants deletion-record --public-key``::

    sed '/^-----BEGIN QALITEL SIGNATURE-----$/,$d' record.txt > body.txt
    sed -n '/^-----BEGIN QALITEL SIGNATURE-----$/,$p' record.txt > block.txt
    printf '%s\\n' '-----BEGIN QALITEL SIGNATURE-----' \\
        "public-key-sha256: $(sha256sum < qalitel-signing.pem | cut -d' ' -f1)" \\
        "ed25519: $(sed -n 's/^ed25519: //p' block.txt)" \\
        '-----END QALITEL SIGNATURE-----' | cmp - block.txt
    sed -n 's/^ed25519: //p' block.txt | base64 -d > signature.bin
    openssl pkeyutl -verify -pubin -inkey qalitel-signing.pem -rawin -in body.txt \\
        -sigfile signature.bin

(``cmp`` fails on a second block, on anything after the END line, or on another key.)
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from core import clock, crypto
from core.config import Settings
from tenants.deletion import DeletionRecord, ItemKind

BEGIN = "-----BEGIN QALITEL SIGNATURE-----"
END = "-----END QALITEL SIGNATURE-----"

KIND_TEXT = {ItemKind.DATABASE: "database", ItemKind.ROLE: "database role",
             ItemKind.GRANT_ROLE: "maintenance grant role", ItemKind.FILES: "files folder",
             ItemKind.ACCESS_LOG: "access log", ItemKind.BACKUP_COPY: "backup copy",
             ItemKind.TARGET_FOLDER: "backup target folder",
             ItemKind.EXPORT: "export file"}


def _at(value: datetime | None) -> str | None:
    return None if value is None else clock.as_utc(value).isoformat(timespec="seconds")


def document(record: DeletionRecord) -> dict[str, Any]:
    """The record as plain data (no client data: identifiers, places, counts, hashes)."""
    return {
        "tenant": {"uid": record.tenant_uid, "slug": record.tenant_slug,
                   "backend": record.backend},
        "status": "purged" if record.purged_at else "in progress",
        "closed_at": _at(record.closed_at), "dropped_at": _at(record.dropped_at),
        "last_backup_expired_at": _at(record.backups_expired_at),
        "purged_at": _at(record.purged_at), "purge_due_at": str(record.purge_due_at),
        "items": [{"kind": i.kind.value, "name": i.name, "place": i.place,
                   "sha256": i.sha256, "size": i.size, "count": i.count,
                   "removed_at": _at(i.removed_at), "removed_by": i.removed_by}
                  for i in record.items],
    }


def canonical(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def fingerprint(settings: Settings) -> str:
    pem = crypto.public_key_pem(settings.encryption_key)
    return hashlib.sha256(pem.encode()).hexdigest()


def fingerprints(settings: Settings) -> set[str]:
    """The fingerprints of every key that verifies (the current one and the rotated ones)."""
    return {hashlib.sha256(pem.encode()).hexdigest()
            for pem in crypto.public_key_pems(settings.encryption_key)}


def signed_json(settings: Settings, record: DeletionRecord) -> dict[str, Any]:
    doc = document(record)
    return {"record": doc, "signature": {
        "algorithm": "ed25519", "over": "canonical JSON of record (sorted keys, no spaces)",
        "public_key_sha256": fingerprint(settings),
        "value": crypto.sign(settings.encryption_key, canonical(doc))}}


def _item_line(item: dict[str, Any]) -> list[str]:
    kind = KIND_TEXT.get(ItemKind(item["kind"]), item["kind"])
    line = f"- {item['removed_at']}  {kind}: {item['name']}"
    if item["place"]:
        line += f"  on {item['place']}"
    details = []
    if item["count"] is not None:
        details.append(f"{item['count']} entries" if item["kind"] == "access-log"
                       else f"{item['count']} files")
    if item["size"] is not None:
        details.append(f"{item['size']} bytes")
    if item["sha256"]:
        details.append(f"SHA-256 {item['sha256']}")
    lines = [line]
    if details:
        lines.append("    " + ", ".join(details))
    lines.append(f"    removed by {item['removed_by']}")
    return lines


def body(doc: dict[str, Any]) -> str:
    tenant = doc["tenant"]
    lines = ["QALITEL — record of deletion", "",
             f"Tenant: {tenant['slug']} (uid {tenant['uid']}, {tenant['backend']})",
             f"Status: {doc['status']}",
             f"Closed: {doc['closed_at']}",
             f"Live data dropped: {doc['dropped_at'] or 'not yet'}",
             f"Last backup copy expired: {doc['last_backup_expired_at'] or 'not yet'}",
             f"Purged: {doc['purged_at'] or 'not yet'}",
             f"Purge date promised at closure: {doc['purge_due_at']}", "",
             f"Removed ({len(doc['items'])} items):"]
    for item in doc["items"]:
        lines += _item_line(item)
    if not doc["items"]:
        lines.append("- nothing yet")
    lines += ["", "This record holds no data of the client: only identifiers, places, counts "
              "and SHA-256 values of what was removed."]
    return "\n".join(lines) + "\n"


def signed_text(settings: Settings, record: DeletionRecord) -> str:
    text = body(document(record))
    signature = crypto.sign(settings.encryption_key, text.encode())
    return (f"{text}{BEGIN}\npublic-key-sha256: {fingerprint(settings)}\n"
            f"ed25519: {signature}\n{END}\n")


def verify_text(settings: Settings, text: str) -> tuple[bool, str]:
    """Whether ``text`` is a deletion record signed by this platform, and why not.

    Strict: one signature block, ending the text (nothing after its END line but
    whitespace), holding exactly the key fingerprint line and the signature line."""
    marker = f"\n{BEGIN}\n"
    if text.count(BEGIN) != 1 or marker not in text:
        return False, ("no signature block" if BEGIN not in text
                       else "more than one signature block")
    content, _, block = text.partition(marker)
    content += "\n"
    lines = block.rstrip().split("\n")
    if len(lines) != 3 or lines[2] != END:
        return False, (f"the signature block must be the key fingerprint line, the ed25519 "
                       f"line and {END}, with nothing after it")
    print_line, signature_line = lines[0], lines[1]
    if not print_line.startswith("public-key-sha256: "):
        return False, "the signature block has no public-key-sha256 line"
    if not signature_line.startswith("ed25519: "):
        return False, "the signature block has no ed25519 line"
    if print_line.split(": ", 1)[1] not in fingerprints(settings):
        return False, "the public key fingerprint is not this platform's"
    signature = signature_line.split(": ", 1)[1]
    if not crypto.signature_ok(settings.encryption_key, content.encode(), signature):
        return False, "the signature does not match the text (altered, or another key)"
    return True, "the signature is the platform's and matches the text"
