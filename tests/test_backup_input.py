"""Bad input to ``qalitel backup``: a clear message, exit status 2, and nothing written
(no catalogue row, nothing on any target, nothing staged)."""

from __future__ import annotations

import pytest

from tests.backup_world import BackupWorld, make_world


@pytest.fixture
def world(make_app, backend, tmp_path, password_hash) -> BackupWorld:
    return make_world(make_app, backend, tmp_path, password_hash)


def assert_refused(world: BackupWorld, result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Error:" in result.output and "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.output, (fragment, result.output)
    assert world.catalogue() == []
    assert all(not m.is_dir() or world.archives(m) == [] for m in world.media)
    assert world.leftovers() == []


@pytest.mark.parametrize(("targets", "message"), [
    ((), "at least 2 folders on different media (has 0)"),
    (("{a}",), "at least 2 folders on different media (has 1)"),
    (("{a}", "{a}"), "listed twice"),
    (("{a}", "relative/folder"), "must be an absolute path"),
    (("{a}", "{b}/../b"), "must be an absolute path"),
    (("{a}", "{file}"), "is a file, not a folder"),
    (("{a}", "ftp://host/x"), "only folders and s3:// targets"),
    (("{a}", "{b}", "s3://Bad_Bucket/x"), "not s3://bucket/prefix"),
    (("{a}", "{b}", "s3://bucket/../up"), "not s3://bucket/prefix"),
    (("{a}", "{b}\x1b[0m"), "control characters"),
    (("{a}", "s3://bucket/p"), "at least 2 folders on different media (has 1)"),
])
def test_malformed_targets(world, tmp_path, targets, message):
    a, b = world.media
    afile = tmp_path / "a-file"
    afile.write_text("not a folder")
    world.configure(backup_targets=tuple(t.format(a=a, b=b, file=afile) for t in targets))
    assert_refused(world, world.run("backup", "run", "acme"), "QALITEL_BACKUP_TARGETS", message)
    assert afile.read_text() == "not a folder"


@pytest.mark.parametrize(("recipient", "message"), [
    ("", "QALITEL_BACKUP_RECIPIENT is not set"),
    ("age1notakey", "not an age public key"),
    ("AGE-SECRET-KEY-1QQQ", "not an age public key"),
])
def test_missing_or_malformed_recipient(world, recipient, message):
    world.configure(backup_recipient=recipient)
    assert_refused(world, world.run("backup", "run", "acme"), message)


@pytest.mark.parametrize(("args", "message"), [
    ((), "name tenant slugs, or --all"),
    (("nosuch",), "no tenant 'nosuch'"),
    (("acme", "nosuch", "other-one"), "no tenant 'nosuch'; no tenant 'other-one'"),
    (("Bad Slug",), "invalid slug"),
    (("acme", "--all"), "not both"),
])
def test_bad_tenant_selection(world, args, message):
    assert_refused(world, world.run("backup", "run", *args), message)


def test_list_and_verify_refuse_unknown_slugs(world):
    assert_refused(world, world.run("backup", "list", "nosuch"), "no tenant 'nosuch'")
    assert_refused(world, world.run("backup", "verify", "nosuch"), "no tenant 'nosuch'")


def test_deep_verify_needs_a_readable_identity(world, tmp_path):
    world.configure(backup_identity=None)
    assert_refused(world, world.run("backup", "verify", "--deep"),
                   "QALITEL_BACKUP_IDENTITY is not set")
    junk = tmp_path / "junk.txt"
    junk.write_text("AGE-SECRET-KEY-1NOTAKEY\n")
    world.configure(backup_identity=junk)
    assert_refused(world, world.run("backup", "verify", "--deep"), "not an age identity file")
    world.configure(backup_identity=tmp_path / "absent.txt")
    assert_refused(world, world.run("backup", "verify", "--deep"), "cannot read it")
