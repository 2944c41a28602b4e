#!/usr/bin/env python3
"""Check an exported QALITEL maintenance access log, without the application.

Usage::

    python verify_log.py log.jsonl [--expect-last HASH] [--previous OLDER.jsonl]

Exit status 0 when the file is one unbroken chain, 1 with the first bad line printed
otherwise, 2 on a usage or read error. Python 3.10+ standard library only: copy this file
anywhere and run it.

The file (``qalitel audit export SLUG``, or the download button of the access-log page) has
one JSON object per line: an entry of the log, in order. Each object has exactly the keys

    tenant_uid         the tenant's permanent id (an entry cannot be moved to another tenant)
    seq                1, 2, 3, ... without gaps
    at                 UTC time, ISO 8601 with microseconds and "Z": 2030-01-31T09:05:00.000001Z
    event              request, approval, denial, request_expired, grant_expired,
                       revocation, session_start, view, change, change_failed, session_end,
                       export
    actor_kind         staff, client or system
    actor_name         the human name of who acted
    actor_email        their e-mail address, or null
    request_public_id  the maintenance request the entry belongs to, or null
    detail             an object (for view and change: table and record ids, ...)
    prev_hash          the "hash" of the previous entry; 64 zeros for the first one
    hash               see below

**Canonical form.** ``hash`` is the lowercase hexadecimal SHA-256 of the UTF-8 bytes of the
JSON text of the object made of every key above except ``hash``, written with keys sorted
(also inside ``detail``), no whitespace at all (separators "," and ":"), non-ASCII characters
as themselves (not \\u escapes) — exactly Python's
``json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``. Numbers in
``detail`` are integers, or floats written as Python writes them (shortest round-trip form).

What a valid file proves: no entry in it was altered, removed, reordered or inserted after it
was written, *relative to its last line*. Dropping lines at the end leaves a valid, shorter
chain: compare the last hash with the one shown on the access-log page (``--expect-last``),
or give an earlier export with ``--previous`` (it must be a prefix of this one).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from collections.abc import Iterable, Iterator
from typing import Any

GENESIS = "0" * 64
FIELDS = ("tenant_uid", "seq", "at", "event", "actor_kind", "actor_name", "actor_email",
          "request_public_id", "detail", "prev_hash")
KEYS = frozenset((*FIELDS, "hash"))
AT_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")
HASH_RE = re.compile(r"[0-9a-f]{64}")


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                              allow_nan=False)


def canonical_bytes(fields: dict[str, Any]) -> bytes:
    """The bytes an entry's hash is computed over (``fields``: the FIELDS, not ``hash``).

    Same as ``json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``.
    """
    return _CANONICAL.encode({key: fields[key] for key in FIELDS}).encode("utf-8")


def entry_hash(fields: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_bytes(fields)).hexdigest()


def _shape_error(entry: dict[str, Any]) -> str | None:
    keys = set(entry)
    if keys != KEYS:
        missing, extra = sorted(KEYS - keys), sorted(keys - KEYS)
        return f"unexpected keys (missing {missing}, extra {extra})"
    if type(entry["seq"]) is not int:
        return "seq is not an integer"
    if not isinstance(entry["at"], str) or not AT_RE.fullmatch(entry["at"]):
        return "at is not an ISO 8601 UTC time with microseconds"
    for key in ("tenant_uid", "event", "actor_kind", "actor_name"):
        if not isinstance(entry[key], str) or not entry[key]:
            return f"{key} is not a non-empty string"
    for key in ("actor_email", "request_public_id"):
        if entry[key] is not None and not isinstance(entry[key], str):
            return f"{key} is neither a string nor null"
    if not isinstance(entry["detail"], dict):
        return "detail is not an object"
    for key in ("prev_hash", "hash"):
        if not isinstance(entry[key], str) or not HASH_RE.fullmatch(entry[key]):
            return f"{key} is not 64 lowercase hexadecimal digits"
    return None


class ChainChecker:
    """Feed it a tenant's entries in order; ``check`` says which one is bad and why.

    Also used by the application (``maintenance.audit.verify``) on the database rows, so the
    command and this script cannot disagree on what a valid chain is.
    """

    def __init__(self, tenant_uid: str | None = None) -> None:
        self.tenant_uid = tenant_uid
        self.count = 0
        self.last_hash = GENESIS
        self.before_last_hash = GENESIS

    @property
    def expected_seq(self) -> int:
        return self.count + 1

    def check(self, entry: dict[str, Any]) -> tuple[int, str] | None:
        """None when ``entry`` continues the chain, else (seq of the bad entry, why)."""
        expected = self.expected_seq
        problem = _shape_error(entry)
        if problem:
            seq = entry.get("seq")
            return (seq if type(seq) is int else expected), problem
        seq = entry["seq"]
        if self.tenant_uid is None:
            self.tenant_uid = entry["tenant_uid"]
        elif entry["tenant_uid"] != self.tenant_uid:
            return seq, f"entry of another tenant ({entry['tenant_uid']})"
        if seq > expected:
            return expected, f"entry {expected} is missing (the next one has seq {seq})"
        if seq < expected:
            return seq, f"seq {seq} out of order or repeated (expected {expected})"
        try:
            computed = entry_hash(entry)
        except ValueError as exc:
            return seq, f"cannot be put in canonical form: {exc}"
        if computed != entry["hash"]:
            return self._explain_mismatch(entry)
        if entry["prev_hash"] != self.last_hash:
            if seq == 1:
                return seq, "entry 1 does not start from the genesis value (forged)"
            return seq, (f"entry {seq} does not follow entry {seq - 1}: its prev_hash is not "
                         f"the hash of entry {seq - 1} (entry {seq - 1} forged or replaced)")
        self.count = seq
        self.before_last_hash, self.last_hash = self.last_hash, entry["hash"]
        return None

    def _explain_mismatch(self, entry: dict[str, Any]) -> tuple[int, str]:
        """Why an entry does not match its hash: altered, or renumbered around an insertion
        or a removal (tried only once a chain is already broken)."""
        seq = entry["seq"]
        if entry_hash({**entry, "seq": seq - 1}) == entry["hash"] \
                and entry["prev_hash"] == self.before_last_hash and seq > 1:
            return seq - 1, (f"entry {seq - 1} was inserted (forged): entry {seq} was written "
                             f"as entry {seq - 1} and renumbered to make room")
        if entry_hash({**entry, "seq": seq + 1}) == entry["hash"]:
            return seq, (f"entry {seq} was written as entry {seq + 1} and renumbered: "
                         f"an entry before it was removed")
        return seq, f"entry {seq} does not match its hash (altered or moved)"


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_line(line: str) -> dict[str, Any]:
    value = json.loads(line, object_pairs_hook=_no_duplicate_keys,
                       parse_constant=_reject_constant)
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


def check_lines(lines: Iterable[str]) -> tuple[int, str, int, str | None]:
    """Check JSON lines; returns (entries, last hash, bad line number or 0, reason)."""
    checker = ChainChecker()
    number = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            return checker.count, checker.last_hash, number, "empty line"
        try:
            entry = parse_line(line)
        except ValueError as exc:
            return checker.count, checker.last_hash, number, f"not valid JSON: {exc}"
        problem = checker.check(entry)
        if problem:
            return checker.count, checker.last_hash, number, f"seq {problem[0]}: {problem[1]}"
    return checker.count, checker.last_hash, 0, None


def _read_lines(path: str) -> Iterator[str]:
    with open(path, encoding="utf-8", newline="") as handle:
        for line in handle:
            yield line.rstrip("\n").rstrip("\r")


def _last_of(path: str) -> tuple[int, str]:
    count, last_hash, bad, reason = check_lines(_read_lines(path))
    if bad:
        raise ValueError(f"{path} line {bad}: {reason}")
    return count, last_hash


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Verify an exported QALITEL access log.")
    parser.add_argument("log", help="the exported .jsonl file")
    parser.add_argument("--expect-last", metavar="HASH",
                        help="the last hash shown on the access-log page: the file must end there")
    parser.add_argument("--previous", metavar="FILE",
                        help="an earlier export: this file must continue it unchanged")
    args = parser.parse_args(argv)
    try:
        count, last_hash, bad, reason = check_lines(_read_lines(args.log))
        previous = _last_of(args.previous) if args.previous else None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if bad:
        print(f"BROKEN at line {bad}: {reason}")
        return 1
    if args.expect_last and args.expect_last.lower() != last_hash:
        print(f"BROKEN: the file ends at entry {count} with hash {last_hash}, "
              f"not at {args.expect_last} (entries missing at the end?)")
        return 1
    if previous is not None:
        prev_count, prev_hash = previous
        if prev_count > count:
            print(f"BROKEN: the earlier export has {prev_count} entries, this one {count}")
            return 1
        if prev_count and _hash_at(args.log, prev_count) != prev_hash:
            print(f"BROKEN at line {prev_count}: differs from the earlier export")
            return 1
    print(f"OK: {count} entries, last hash {last_hash}")
    return 0


def _hash_at(path: str, seq: int) -> str | None:
    for number, line in enumerate(_read_lines(path), start=1):
        if number == seq:
            return parse_line(line).get("hash")
    return None


if __name__ == "__main__":
    sys.exit(main())
