"""The standalone verifier a client runs on a downloaded log (standard library only)."""

from __future__ import annotations

import ast
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from maintenance import audit, verify_log
from tests.test_audit import add_tenant

SCRIPT = Path(verify_log.__file__)

# The canonical form, written out by hand: sorted keys, no whitespace, UTF-8 as is.
VECTOR = {"tenant_uid": "5d0c6f2e-0000-4000-8000-000000000001", "seq": 1,
          "at": "2030-01-31T09:05:00.000001Z", "event": "view", "actor_kind": "staff",
          "actor_name": "Éric Ingénieur", "actor_email": "eric@scoqi.example",
          "request_public_id": None,
          "detail": {"table": "nonconformities", "ids": [7, 9], "hours": 1.5},
          "prev_hash": "0" * 64}
VECTOR_TEXT = ('{"actor_email":"eric@scoqi.example","actor_kind":"staff",'
               '"actor_name":"Éric Ingénieur","at":"2030-01-31T09:05:00.000001Z",'
               '"detail":{"hours":1.5,"ids":[7,9],"table":"nonconformities"},"event":"view",'
               '"prev_hash":"' + "0" * 64 + '","request_public_id":null,"seq":1,'
               '"tenant_uid":"5d0c6f2e-0000-4000-8000-000000000001"}')
VECTOR_HASH = "c4da45fb132815dd99b1dc351226407a33970b9ef1bacda818fd46a6f3a4c817"


def test_canonical_form_is_the_documented_one():
    assert verify_log.canonical_bytes(VECTOR) == VECTOR_TEXT.encode("utf-8")
    assert hashlib.sha256(VECTOR_TEXT.encode("utf-8")).hexdigest() == VECTOR_HASH
    assert verify_log.entry_hash(VECTOR) == VECTOR_HASH
    assert verify_log.entry_hash({**VECTOR, "extra": "ignored"}) == VECTOR_HASH


def test_script_imports_only_the_standard_library():
    tree = ast.parse(SCRIPT.read_text(encoding="utf-8"))
    modules = {alias.name.split(".")[0] for node in ast.walk(tree)
               if isinstance(node, ast.Import) for alias in node.names}
    modules |= {node.module.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) and node.module}
    assert modules - {"__future__"} <= set(sys.stdlib_module_names), modules


def chain(n: int, uid: str = "uid-1", **detail) -> list[str]:
    """n valid lines, as an export writes them."""
    lines, previous = [], verify_log.GENESIS
    for seq in range(1, n + 1):
        entry = {**VECTOR, "tenant_uid": uid, "seq": seq, "prev_hash": previous,
                 "detail": {"ids": [seq], **detail}}
        entry["hash"] = previous = verify_log.entry_hash(entry)
        lines.append(json.dumps(entry, sort_keys=True, separators=(",", ":"),
                                ensure_ascii=False))
    return lines


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def run_copy(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """Run a copy of the script in isolated mode, far from the project (as a client would)."""
    alone = tmp_path / "alone"
    alone.mkdir(exist_ok=True)
    copy = shutil.copy(SCRIPT, alone / "verify_log.py")
    return subprocess.run([sys.executable, "-I", str(copy), *args], capture_output=True,
                          text=True, cwd=alone, timeout=60, check=False)


def test_a_copy_runs_alone_and_accepts_a_valid_file(tmp_path):
    path = write(tmp_path / "log.jsonl", chain(5))
    done = run_copy(tmp_path, str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    last = json.loads(chain(5)[-1])["hash"]
    assert done.stdout.strip() == f"OK: 5 entries, last hash {last}"
    assert run_copy(tmp_path, str(path), "--expect-last", last).returncode == 0
    empty = write(tmp_path / "empty.jsonl", [])
    assert run_copy(tmp_path, str(empty)).returncode == 0


def test_a_copy_prints_the_first_bad_line(tmp_path):
    lines = chain(5)
    lines[2] = lines[2].replace('"Éric Ingénieur"', '"Eric"')
    done = run_copy(tmp_path, str(write(tmp_path / "log.jsonl", lines)))
    assert done.returncode == 1
    assert done.stdout.strip() == ("BROKEN at line 3: seq 3: entry 3 does not match its hash "
                                   "(altered or moved)")
    assert run_copy(tmp_path, str(tmp_path / "nothing.jsonl")).returncode == 2


def edited(edit) -> list[str]:
    lines = chain(6)
    edit(lines)
    return lines


def _set(line: str, **values) -> str:
    entry = json.loads(line)
    entry.update(values)
    return json.dumps(entry, ensure_ascii=False)


def _del(lines: list[str], index: int) -> None:
    del lines[index]


def _swap(lines: list[str], i: int, j: int) -> None:
    lines[i], lines[j] = lines[j], lines[i]


@pytest.mark.parametrize("edit, line, message", [
    (lambda ls: ls.__setitem__(1, _set(ls[1], actor_name="X")), 2, "seq 2: entry 2 does not "
                                                                   "match its hash"),
    (lambda ls: ls.__setitem__(1, _set(ls[1], at="2030-01-31T09:05:00Z")), 2, "at is not"),
    (lambda ls: ls.__setitem__(1, _set(ls[1], seq=True)), 2, "seq is not an integer"),
    (lambda ls: ls.__setitem__(1, _set(ls[1], detail=[])), 2, "detail is not an object"),
    (lambda ls: ls.__setitem__(1, _set(ls[1], note="x")), 2, "extra \\['note'\\]"),
    (lambda ls: ls.__setitem__(1, _set(ls[1], tenant_uid="uid-2")), 2, "another tenant"),
    (lambda ls: ls.__setitem__(1, _set(ls[1], hash="A" * 64)), 2, "64 lowercase"),
    (lambda ls: ls.__setitem__(1, ls[1][:-1] + ',"seq":2}'), 2, "duplicate key"),
    (lambda ls: ls.__setitem__(1, ls[1].replace('"ids":[2]', '"ids":[NaN]')), 2,
     "not a JSON number"),
    (lambda ls: ls.__setitem__(1, "[1, 2]"), 2, "not a JSON object"),
    (lambda ls: ls.__setitem__(1, "{"), 2, "not valid JSON"),
    (lambda ls: ls.insert(1, ""), 2, "empty line"),
    (lambda ls: _del(ls, 2), 3, "entry 3 is missing"),
    (lambda ls: _del(ls, 0), 1, "entry 1 is missing"),
    (lambda ls: _swap(ls, 1, 3), 2, "entry 2 is missing"),
    (lambda ls: ls.insert(2, ls[1]), 3, "seq 2 out of order or repeated"),
])
def test_edits_of_a_file_are_caught_at_their_line(tmp_path, capsys, edit, line, message):
    path = write(tmp_path / "log.jsonl", edited(edit))
    assert verify_log.main([str(path)]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"BROKEN at line {line}: "), out
    assert __import__("re").search(message, out), out


def test_truncated_file_is_caught_only_against_a_known_end(tmp_path, capsys):
    full = chain(6)
    path = write(tmp_path / "log.jsonl", full[:4])
    assert verify_log.main([str(path)]) == 0
    last = json.loads(full[-1])["hash"]
    assert verify_log.main([str(path), "--expect-last", last]) == 1
    assert "ends at entry 4" in capsys.readouterr().out
    older = write(tmp_path / "older.jsonl", full)
    assert verify_log.main([str(path), "--previous", str(older)]) == 1
    assert "earlier export has 6 entries" in capsys.readouterr().out


def test_a_newer_export_must_continue_the_older_one(tmp_path, capsys):
    older = write(tmp_path / "older.jsonl", chain(3))
    newer = write(tmp_path / "newer.jsonl", chain(5))
    assert verify_log.main([str(newer), "--previous", str(older)]) == 0
    rewritten = write(tmp_path / "rewritten.jsonl", chain(5, uid="uid-1", note="other"))
    assert verify_log.main([str(rewritten), "--previous", str(older)]) == 1
    assert "BROKEN at line 3: differs from the earlier export" in capsys.readouterr().out
    bad_older = write(tmp_path / "bad.jsonl", ["{"])
    assert verify_log.main([str(newer), "--previous", str(bad_older)]) == 2


def test_crlf_line_endings_are_accepted(tmp_path, capsys):
    path = tmp_path / "log.jsonl"
    path.write_bytes("".join(line + "\r\n" for line in chain(3)).encode("utf-8"))
    assert verify_log.main([str(path)]) == 0


def test_export_of_awkward_content_verifies_alone(platform_app, tmp_path):
    """What the database hands back (PostgreSQL JSON, SQLite text) hashes as written."""
    tenant_id = add_tenant(platform_app, "alpha")
    awkward = {"quote": 'a "b" \\ c', "newline": "x\ny\tz", "emoji": "🔧 ß ü",
               "separator": "\u2028\u2029\x85", "control": "\x01", "float": 0.1 + 0.2,
               "big": 2**62, "neg": -1.5e-7, "nested": {"z": [None, True, False], "a": {}},
               "é": "key not ASCII"}
    with platform_app.app_context():
        for kind in audit.ACTOR_KINDS:
            audit.append(tenant_id, "change", actor_kind=kind, actor_name="Zoë O'Brien-Łukasz",
                         actor_email="zoe@example.com", detail=awkward)
        assert audit.verify(tenant_id).ok
        text_ = audit.export_jsonl(tenant_id)
    path = tmp_path / "alpha.jsonl"
    path.write_text(text_, encoding="utf-8")
    done = run_copy(tmp_path, str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(text_.splitlines()) == 3  # no character any tool takes for a line break
    assert json.loads(text_.splitlines()[0])["detail"] == awkward
