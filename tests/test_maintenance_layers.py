"""``maintenance`` sits on ``tenants`` and ``core`` only: it imports nothing of the app
(``qalitel``), which registers what maintenance needs from it (admin check, admin list)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 400


def _imported(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__" \
                and node.args and isinstance(node.args[0], ast.Constant):
            names.add(str(node.args[0].value))
    return names


def test_maintenance_imports_nothing_of_the_app():
    offenders = {}
    files = sorted((ROOT / "maintenance").rglob("*.py"))
    assert len(files) > 10
    for path in files:
        found = {name for name in _imported(ast.parse(path.read_text()))
                 if name == "qalitel" or name.startswith("qalitel.")}
        if found:
            offenders[path.name] = sorted(found)
    assert offenders == {}


def test_maintenance_files_stay_small():
    long = {path.name: n for path in (ROOT / "maintenance").glob("*.py")
            if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_the_app_registers_what_maintenance_needs(make_app):
    from maintenance import notify, purge
    from tenants import hooks

    make_app()
    assert notify._listers and purge.purge_log in hooks.before_destroy
