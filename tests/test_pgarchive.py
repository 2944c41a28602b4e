"""The in-process check of ``pg_dump --format=custom`` archives (``backups/pgarchive.py``)
against real dumps of a real database: whole dumps pass with exact row counts, whatever the
compression and whether ``pg_dump`` could seek; a dump cut at any byte, or with bytes added
or a data block damaged, is refused. PostgreSQL only (it is about ``pg_dump``'s format)."""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
from psycopg2 import sql
from sqlalchemy import make_url

from backups.dump import libpq_env, pg_tool
from backups.pgarchive import DumpFormatError, check_custom_dump
from core.config import Settings
from tests.conftest import PG_PREFIX, PG_URL
from tests.fixtures.pg import drop_databases_and_roles, require_postgres

ROWS = {("public", "notes"): 300, ("public", "empty"): 0, ("public", "one"): 1}


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    from tenants import pg

    require_postgres()
    name = f"{PG_PREFIX}dumpcheck"
    with pg.admin_connection(PG_URL) as conn, conn.cursor() as cur:
        cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_url(PG_URL).set(database=name)
    conn = psycopg2.connect(url.render_as_string(hide_password=False))
    try:
        with conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE notes (id int PRIMARY KEY, body text); "
                        "INSERT INTO notes SELECT g, 'line ' || g || E'\\nsecond\\ttab \\\\' "
                        "FROM generate_series(1, 300) g; "
                        "CREATE TABLE empty (x int); CREATE TABLE one (x text); "
                        "INSERT INTO one VALUES (NULL); SELECT lo_from_bytea(0, 'large')")
    finally:
        conn.close()
    yield name
    drop_databases_and_roles(PG_URL, [name], [])


def _dump(database: str, out: Path, *options: str, pipe: bool = False) -> Path:
    url = make_url(PG_URL).set(database=database)
    with psycopg2.connect(make_url(PG_URL).render_as_string(hide_password=False)) as conn:
        major = conn.server_version // 10000
    argv = [pg_tool(Settings(), "pg_dump", major), "--format=custom", *options]
    if pipe:  # not seekable: the table of contents keeps no data offsets
        with open(out, "wb") as handle:
            subprocess.run(argv, env=libpq_env(url), stdout=handle, check=True)
    else:
        subprocess.run([*argv, f"--file={out}"], env=libpq_env(url), check=True)
    return out


@pytest.mark.parametrize(("options", "pipe"), [((), False), (("--compress=0",), False),
                                               ((), True), (("--compress=9",), True)])
def test_whole_dumps_pass_with_exact_row_counts(database, tmp_path, options, pipe):
    found = check_custom_dump(_dump(database, tmp_path / "d.pgdump", *options, pipe=pipe))
    assert found.rows == ROWS


@pytest.mark.parametrize("pipe", [False, True])
def test_a_dump_cut_at_any_byte_is_refused(database, tmp_path, pipe):
    whole = _dump(database, tmp_path / "d.pgdump", pipe=pipe).read_bytes()
    cut = tmp_path / "cut.pgdump"
    for size in range(len(whole)):
        cut.write_bytes(whole[:size])
        with pytest.raises(DumpFormatError):
            check_custom_dump(cut)


def test_bytes_after_the_last_block_or_a_damaged_block_are_refused(database, tmp_path):
    path = _dump(database, tmp_path / "d.pgdump")
    whole = path.read_bytes()
    path.write_bytes(whole + b"\0")
    with pytest.raises(DumpFormatError, match="unexpected bytes after"):
        check_custom_dump(path)
    damaged = bytearray(whole)
    damaged[whole.index(b"x\x9c") + 20] ^= 0xFF  # inside the first block's zlib stream
    path.write_bytes(bytes(damaged))
    with pytest.raises(DumpFormatError):
        check_custom_dump(path)


@pytest.mark.parametrize("content", [b"", b"PGDMP", b"PGDMP\x09\x00\x00", b"not a dump at all"])
def test_what_is_not_a_custom_archive_is_refused(tmp_path, content):
    path = tmp_path / "x.pgdump"
    path.write_bytes(content)
    with pytest.raises(DumpFormatError):
        check_custom_dump(path)


def test_wrapper_is_skipped_only_without_a_configured_folder(tmp_path):
    """``QALITEL_PG_BIN_DIR`` wins; otherwise a ``PATH`` leading to Debian's ``pg_wrapper``
    gives the server version's own binary when it is installed."""
    assert pg_tool(dataclasses.replace(Settings(), pg_bin_dir=tmp_path), "pg_dump", 15) \
        == str(tmp_path / "pg_dump")
    found = pg_tool(Settings(), "pg_dump", 15)
    wrapper = Path(pg_tool(Settings(), "pg_dump")).resolve().name == "pg_wrapper"
    if wrapper and Path("/usr/lib/postgresql/15/bin/pg_dump").exists():
        assert found == "/usr/lib/postgresql/15/bin/pg_dump"
    assert pg_tool(Settings(), "pg_dump", 999) == pg_tool(Settings(), "pg_dump")
