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


def _snapshot(world: BackupWorld) -> tuple:
    """What a refused command must leave as it was: catalogue, every target's files, the
    tenant's files and records."""
    from qalitel.records.models import NonConformity
    from tests.conftest import in_tenant

    root = world.settings.instance_dir / "files" / world.uid
    with in_tenant(world.app, world.slug) as session:
        titles = sorted(r.title for r in session.query(NonConformity))
    return (world.catalogue(),
            [[(p.name, p.stat().st_size) for p in world.archives(m)] for m in world.media],
            sorted((p.name, p.stat().st_size) for p in root.rglob("*") if p.is_file()),
            titles)


@pytest.mark.parametrize("command", [("prune",), ("verify", "acme"), ("restore", "acme", "1"),
                                     ("status",)])
def test_every_command_refuses_malformed_targets_and_changes_nothing(world, command):
    from datetime import timedelta

    from core.clock import ManualClock, set_clock

    assert world.run("backup", "run", "acme").exit_code == 0
    assert world.run("backup", "run", "acme").exit_code == 0
    clock = ManualClock()
    set_clock(world.app, clock)
    clock.advance(timedelta(days=90))  # backup 1 is due for pruning
    before = _snapshot(world)
    a, _b = world.media
    world.configure(backup_targets=(str(a), "relative/b"))
    result = world.run("backup", *command)
    if command == ("status",):  # reads the catalogue only: needs no targets
        assert "Traceback" not in result.output and _snapshot(world) == before
        return
    assert result.exit_code == 2, result.output
    assert "QALITEL_BACKUP_TARGETS" in result.output and "must be an absolute path" in \
        result.output
    assert _snapshot(world) == before
    assert world.leftovers() == []


def test_restore_refuses_other_tenants_and_unusable_backups(world, password_hash):
    """Another tenant's backup id, an id past any integer, and a backup with no good copy
    anywhere: exit 2, the message names it, and neither tenant changes."""
    from tests.conftest import provision

    provision(world.app, "bravo", password_hash)
    assert world.run("backup", "run", "bravo").exit_code == 0  # backup 1 is bravo's
    for folder in world.media:
        folder.rename(folder.with_name(folder.name + "-unmounted"))
    assert world.run("backup", "run", "acme").exit_code == 1  # backup 2: no copy anywhere
    for folder in world.media:
        folder.with_name(folder.name + "-unmounted").rename(folder)
    assert [b["status"] for b in world.catalogue()] == ["complete", "failed"]
    before = _snapshot(world)
    for args, message in [(("acme", "1"), "tenant 'acme' has no backup 1"),
                          (("bravo", "2"), "tenant 'bravo' has no backup 2"),
                          (("acme", "9" * 19), "is not a number from 1 to 2147483647"),
                          (("acme", "2"), "backup 2 of 'acme' is failed: nothing to restore"),
                          (("acme", "2", "--as", "acme-two"), "is failed: nothing to restore"),
                          (("closed-one", "1"), "no tenant 'closed-one'")]:
        result = world.run("backup", "restore", *args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output and "Traceback" not in result.output
    assert _snapshot(world) == before
    assert world.leftovers() == []
    from core.db import db
    from tenants.registry import Tenant

    with world.app.app_context():
        assert sorted(t.slug for t in db.session.query(Tenant)) == ["acme", "bravo"]


def test_restore_refuses_backup_ids_that_are_not_ascii_numbers(world):
    """Only ASCII digits name a backup: a superscript, an Arabic-Indic digit, an exponent,
    a sign or a number past any id exits 2 with one clear message, nothing restored."""
    assert world.run("backup", "run", "acme").exit_code == 0
    before = _snapshot(world)
    for raw in ["²", "١", "1e3", "-1", "0", "+1", " 1", "1.0", "0x1f", "9" * 11, "9" * 400,
                "1\n"]:
        result = world.run("backup", "restore", "acme", "--", raw)
        assert result.exit_code == 2, (raw, result.output)
        assert "is not a number from 1 to 2147483647" in result.output, (raw, result.output)
        assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    bare = world.run("backup", "restore", "acme", "-1")  # click takes it for an option
    assert bare.exit_code == 2 and "Error:" in bare.output and "Traceback" not in bare.output
    assert _snapshot(world) == before
    assert world.leftovers() == []
