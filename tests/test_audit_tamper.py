"""Tampering with the access log as someone with write access to the platform database would
(triggers dropped or disabled first): `qalitel audit verify` names the first bad entry each
time, and the standalone verifier agrees on the exported log. Platform database on SQLite and
on PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from flask import Flask
from sqlalchemy import Connection, insert, text

from core.db import db
from maintenance import audit, verify_log
from maintenance.models import AccessLogEntry
from tests.test_audit import add_tenant, log_view

LOG = AccessLogEntry.__table__


@dataclass
class World:
    app: Flask
    alpha: int
    bravo: int
    uid: dict[int, str]


@pytest.fixture
def world(platform_app) -> World:
    """alpha with 6 entries, bravo with 3, all valid."""
    alpha, bravo = add_tenant(platform_app, "alpha"), add_tenant(platform_app, "bravo")
    log_view(platform_app, alpha, 6)
    log_view(platform_app, bravo, 3)
    with platform_app.app_context():
        uids = dict(db.session.execute(text("SELECT id, uid FROM tenants")).all())
        assert audit.verify(alpha).ok and audit.verify(bravo).ok
    return World(platform_app, alpha, bravo, uids)


@contextmanager
def attacker(app: Flask) -> Iterator[Connection]:
    """A connection with full rights on the platform database; the append-only triggers are
    disabled (PostgreSQL) or dropped (SQLite) first, as such an attacker would."""
    with app.app_context(), db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE access_log DISABLE TRIGGER USER"))
            conn.execute(text("ALTER TABLE access_log_heads DISABLE TRIGGER USER"))
        else:
            for name in audit.GUARDS["sqlite"]:
                conn.execute(text(f"DROP TRIGGER IF EXISTS {name}"))
        yield conn


def rows(conn: Connection, tenant_id: int) -> list[dict]:
    return [dict(r._mapping) for r in conn.execute(
        LOG.select().where(LOG.c.tenant_id == tenant_id).order_by(LOG.c.seq))]


def forge(conn: Connection, tenant_uid: str, tenant_id: int, seq: int, prev_hash: str,
          **changes) -> str:
    """Insert a well-formed entry, hashed as the application would; returns its hash."""
    fields = {"tenant_uid": tenant_uid, "seq": seq, "at": "2030-01-01T00:00:00.000000Z",
              "event": "view", "actor_kind": "staff", "actor_name": "Nobody",
              "actor_email": None, "request_public_id": None, "detail": {"ids": [1]},
              "prev_hash": prev_hash, **changes}
    digest = verify_log.entry_hash(fields)
    del fields["tenant_uid"]
    conn.execute(insert(LOG).values(tenant_id=tenant_id, hash=digest, **fields))
    return digest


def renumber(conn: Connection, tenant_id: int, from_seq: int, delta: int) -> None:
    """seq += delta for seq >= from_seq, in two steps (the unique key holds in between)."""
    conn.execute(text("UPDATE access_log SET seq = -seq WHERE tenant_id = :t AND seq >= :s"),
                 {"t": tenant_id, "s": from_seq})
    conn.execute(text("UPDATE access_log SET seq = :d - seq WHERE tenant_id = :t AND seq < 0"),
                 {"t": tenant_id, "d": delta})


LINE_RE = re.compile(r"^(?P<slug>[a-z-]+): seq (?P<seq>\d+): (?P<reason>.*) \(\d+ valid")


def command_verdicts(app: Flask, *args: str) -> dict[str, tuple[int, str]]:
    """Run `qalitel audit verify`; the broken tenants by slug: (seq, reason)."""
    outcome = app.test_cli_runner().invoke(args=["audit", "verify", *args])
    broken = {m["slug"]: (int(m["seq"]), m["reason"])
              for m in map(LINE_RE.match, outcome.output.splitlines()) if m}
    assert outcome.exit_code == (1 if broken else 0), outcome.output
    return broken


def standalone(app: Flask, slug: str, tmp_path, *options: str, capsys) -> tuple[int, str]:
    """Export with the command, then check with the standalone verifier."""
    path = tmp_path / f"{slug}.jsonl"
    exported = app.test_cli_runner().invoke(args=["audit", "export", slug, "-o", str(path)])
    assert exported.exit_code == 0, exported.output
    capsys.readouterr()
    code = verify_log.main([str(path), *options])
    return code, capsys.readouterr().out


def assert_named(world: World, tmp_path, capsys, seq: int, reason: str) -> None:
    """alpha broken at ``seq`` (reason matching), bravo intact, and the standalone verifier
    says the same of the exported file."""
    verdicts = command_verdicts(world.app)
    assert set(verdicts) == {"alpha"}, verdicts
    assert verdicts["alpha"][0] == seq
    assert re.search(reason, verdicts["alpha"][1]), verdicts["alpha"]
    assert command_verdicts(world.app, "alpha") == verdicts
    code, out = standalone(world.app, "alpha", tmp_path, capsys=capsys)
    assert code == 1
    assert f": seq {seq}: {verdicts['alpha'][1]}" in out, out


@pytest.mark.parametrize("column, value", [
    ("actor_name", "Someone Else"), ("actor_email", "x@evil.example"), ("event", "request"),
    ("at", "2031-01-01T00:00:00.000000Z"), ("detail", '{"table":"users","ids":[1]}'),
    ("request_public_id", "00000000-0000-0000-0000-000000000000"),
    ("actor_kind", "client"), ("prev_hash", "f" * 64), ("hash", "e" * 64),
])
def test_edited_field_is_named(world, tmp_path, capsys, column, value):
    with attacker(world.app) as conn:
        conn.execute(text(f"UPDATE access_log SET {column} = :v "  # noqa: S608 (fixed names)
                          "WHERE tenant_id = :t AND seq = 3"), {"v": value, "t": world.alpha})
    assert_named(world, tmp_path, capsys, 3, r"entry 3 does not match its hash")


def test_deleted_middle_entry_is_named(world, tmp_path, capsys):
    with attacker(world.app) as conn:
        conn.execute(text("DELETE FROM access_log WHERE tenant_id = :t AND seq = 3"),
                     {"t": world.alpha})
    assert_named(world, tmp_path, capsys, 3, r"entry 3 is missing")


def test_deleted_middle_entry_with_the_rest_renumbered_is_named(world, tmp_path, capsys):
    with attacker(world.app) as conn:
        conn.execute(text("DELETE FROM access_log WHERE tenant_id = :t AND seq = 3"),
                     {"t": world.alpha})
        renumber(conn, world.alpha, 4, -1)
    assert_named(world, tmp_path, capsys, 3,
                 r"written as entry 4 and renumbered: an entry before it was removed")


def test_deleted_last_entry_is_caught_by_the_sealed_head(world, tmp_path, capsys):
    with world.app.app_context():
        sealed_last = audit.head(world.alpha).last_hash
    with attacker(world.app) as conn:
        conn.execute(text("DELETE FROM access_log WHERE tenant_id = :t AND seq = 6"),
                     {"t": world.alpha})
    verdicts = command_verdicts(world.app)
    assert verdicts == {"alpha": (6, verdicts["alpha"][1])}
    assert "entry 6 is missing: the sealed head records 6 entries" in verdicts["alpha"][1]
    # The shorter file is a valid chain by itself: only the last hash shown to the client
    # (the page) or an earlier download reveals it, and the standalone check then agrees.
    assert standalone(world.app, "alpha", tmp_path, capsys=capsys)[0] == 0
    code, out = standalone(world.app, "alpha", tmp_path, "--expect-last", sealed_last,
                           capsys=capsys)
    assert code == 1 and "ends at entry 5" in out
    with world.app.app_context(), pytest.raises(audit.AuditWriteError, match="sealed head"):
        audit.append(world.alpha, "view", actor_kind="staff", actor_name="Eve")


def test_swapped_entries_are_named(world, tmp_path, capsys):
    with attacker(world.app) as conn:
        params = {"t": world.alpha}
        conn.execute(text("UPDATE access_log SET seq = -2 WHERE tenant_id = :t AND seq = 2"),
                     params)
        conn.execute(text("UPDATE access_log SET seq = 2 WHERE tenant_id = :t AND seq = 4"),
                     params)
        conn.execute(text("UPDATE access_log SET seq = 4 WHERE tenant_id = :t AND seq = -2"),
                     params)
    assert_named(world, tmp_path, capsys, 2, r"entry 2 does not match its hash")


def test_forged_entry_inserted_in_the_middle_is_named(world, tmp_path, capsys):
    with attacker(world.app) as conn:
        before = rows(conn, world.alpha)[2]
        renumber(conn, world.alpha, 4, +1)
        forge(conn, world.uid[world.alpha], world.alpha, 4, before["hash"])
    assert_named(world, tmp_path, capsys, 4, r"entry 4 was inserted \(forged\)")


def test_forged_entry_with_a_wrong_link_is_named(world, tmp_path, capsys):
    with attacker(world.app) as conn:
        renumber(conn, world.alpha, 4, +1)
        forge(conn, world.uid[world.alpha], world.alpha, 4, "a" * 64)
    assert_named(world, tmp_path, capsys, 4, r"entry 4 does not follow entry 3")


def test_forged_entry_appended_at_the_end_is_caught_by_the_sealed_head(world, tmp_path,
                                                                        capsys):
    with world.app.app_context():
        sealed_last = audit.head(world.alpha).last_hash
    with attacker(world.app) as conn:
        forge(conn, world.uid[world.alpha], world.alpha, 7, rows(conn, world.alpha)[-1]["hash"])
    verdicts = command_verdicts(world.app)
    assert verdicts["alpha"][0] == 7 and "beyond the sealed head" in verdicts["alpha"][1]
    assert standalone(world.app, "alpha", tmp_path, capsys=capsys)[0] == 0
    code, out = standalone(world.app, "alpha", tmp_path, "--expect-last", sealed_last,
                           capsys=capsys)
    assert code == 1 and "ends at entry 7" in out


def test_entry_moved_to_another_tenant_is_named_in_both(world):
    with attacker(world.app) as conn:
        conn.execute(text("UPDATE access_log SET tenant_id = :a, seq = 7 "
                          "WHERE tenant_id = :b AND seq = 3"),
                     {"a": world.alpha, "b": world.bravo})
    verdicts = command_verdicts(world.app)
    assert verdicts["alpha"][0] == 7 and "does not match its hash" in verdicts["alpha"][1]
    assert verdicts["bravo"][0] == 3 and "entry 3 is missing" in verdicts["bravo"][1]


def test_rewritten_and_rechained_log_is_caught_by_the_sealed_head(world, tmp_path, capsys):
    """Without the encryption key, a consistent rewrite cannot be sealed."""
    with attacker(world.app) as conn:
        original = rows(conn, world.alpha)
        conn.execute(text("DELETE FROM access_log WHERE tenant_id = :t AND seq >= 2"),
                     {"t": world.alpha})
        previous = original[0]["hash"]
        for row in original[1:]:
            previous = forge(conn, world.uid[world.alpha], world.alpha, row["seq"], previous,
                             at=row["at"], actor_name="Someone Else")
    verdicts = command_verdicts(world.app)
    assert verdicts["alpha"][0] == 6
    assert "does not end at the hash the sealed head records" in verdicts["alpha"][1]
    assert standalone(world.app, "alpha", tmp_path, capsys=capsys)[0] == 0
    with attacker(world.app) as conn:
        conn.execute(text("UPDATE access_log_heads SET last_hash = :h WHERE tenant_id = :t"),
                     {"h": previous, "t": world.alpha})
    verdicts = command_verdicts(world.app)
    assert verdicts["alpha"][0] == 6 and "seal is wrong" in verdicts["alpha"][1]


def test_removed_head_is_named(world):
    with attacker(world.app) as conn:
        conn.execute(text("DELETE FROM access_log_heads WHERE tenant_id = :t"),
                     {"t": world.alpha})
    verdicts = command_verdicts(world.app)
    assert verdicts == {"alpha": (1, "the log has no sealed head")}
    with world.app.app_context(), pytest.raises(audit.AuditWriteError, match="sealed head"):
        audit.append(world.alpha, "view", actor_kind="staff", actor_name="Eve")


def test_edited_export_is_caught_by_the_standalone_verifier(world, tmp_path, capsys):
    code, out = standalone(world.app, "alpha", tmp_path, capsys=capsys)
    assert code == 0 and "OK: 6 entries" in out
    path = tmp_path / "alpha.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(lines).replace('"ids":[3]', '"ids":[4]'), encoding="utf-8")
    assert verify_log.main([str(path)]) == 1
    assert "BROKEN at line 4: seq 4: entry 4 does not match its hash" in capsys.readouterr().out
