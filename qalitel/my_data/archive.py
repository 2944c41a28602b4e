"""The personal export as a ZIP: ``data.json`` (every section), one readable CSV per
non-empty section, and ``manifest.json`` (counts, SHA-256 of each member, what is withheld)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from datetime import UTC, datetime
from typing import IO, Any

from qalitel.my_data.collect import WITHHELD, Data

# Spreadsheets run a cell starting with one of these as a formula: such cells get a quote.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False,
                                                             sort_keys=True)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _csv(rows: list[dict[str, Any]]) -> bytes:
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return ("\ufeff" + out.getvalue()).encode()  # BOM: spreadsheets read it as UTF-8


def personal_zip(data: Data, out: IO[bytes], *, tenant: str, user_id: int) -> dict[str, Any]:
    """Write the ZIP of ``data`` to ``out``; returns the manifest."""
    members = {"data.json": json.dumps(data, ensure_ascii=False, indent=2,
                                       sort_keys=True).encode()}
    for section, rows in sorted(data.items()):
        if rows:
            members[f"csv/{section}.csv"] = _csv(rows)
    manifest = {
        "format": "qalitel-personal-data-1", "tenant": tenant, "user_id": user_id,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "counts": {section: len(rows) for section, rows in sorted(data.items())},
        "withheld": {table: list(columns) for table, columns in WITHHELD.items()},
        "files": {name: {"sha256": hashlib.sha256(body).hexdigest(), "size": len(body)}
                  for name, body in members.items()},
    }
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, body in members.items():
            archive.writestr(name, body)
        archive.writestr("manifest.json", json.dumps(manifest, indent=2, sort_keys=True))
    return manifest
