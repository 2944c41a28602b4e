"""The README documents every configuration variable and both commands."""

from pathlib import Path

from core.config import VARIABLES

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_every_variable_is_documented():
    missing = [name for name, *_ in VARIABLES if f"`{name}`" not in README]
    assert missing == []


def test_two_commands_come_first():
    first = README.index("## ")
    section = README[first:README.index("## ", first + 3)]
    assert "make run" in section and "make test" in section


def test_ci_runs_make_test_with_postgres_required():
    ci = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text()
    assert "make test" in ci and "QALITEL_REQUIRE_POSTGRES=1" in ci
