"""An ``s3://bucket/prefix`` target beside the two folders, against moto's server mode (a
real HTTP S3 stand-in on loopback, reached through boto3 as a real service would be)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest

from tests.backup_world import TITLE, BackupWorld, make_world
from tests.conftest import _free_port

BUCKET = "qalitel-backups"


@pytest.fixture
def s3_endpoint(monkeypatch) -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    import requests

    # moto keeps its buckets per process: start every test from an empty service
    requests.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()
    _client(endpoint).create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()


def _client(endpoint: str):
    import boto3

    return boto3.client("s3", endpoint_url=endpoint)


def _world(make_app, backend, tmp_path, password_hash, endpoint, bucket=BUCKET) -> BackupWorld:
    media = [tmp_path / "media-a", tmp_path / "media-b"]
    for folder in media:
        folder.mkdir()
    return make_world(make_app, backend, tmp_path, password_hash,
                      media=media, backup_s3_endpoint=endpoint,
                      backup_targets=(*map(str, media), f"s3://{bucket}/prod"))


def test_s3_target_gets_an_encrypted_copy_and_is_verified(make_app, backend, tmp_path,
                                                          password_hash, s3_endpoint):
    world = _world(make_app, backend, tmp_path, password_hash, s3_endpoint)
    result = world.run("backup", "run", "acme")
    assert result.exit_code == 0, result.output
    assert "3/3 targets" in result.output
    [backup] = world.catalogue()
    target = f"s3://{BUCKET}/prod"
    assert backup["status"] == "complete" and backup["copies"][target] == ("ok", None)
    s3 = _client(s3_endpoint)
    data = s3.get_object(Bucket=BUCKET, Key=f"prod/{backup['key']}")["Body"].read()
    assert hashlib.sha256(data).hexdigest() == backup["sha256"]
    assert TITLE.encode() not in data and b"secret of acme" not in data
    assert world.run("backup", "verify", "acme", "--deep").exit_code == 0

    s3.put_object(Bucket=BUCKET, Key=f"prod/{backup['key']}", Body=data[:-1] + b"\0")
    result = world.run("backup", "verify", "acme")
    assert result.exit_code == 1 and f"on {target}: altered" in result.output
    s3.delete_object(Bucket=BUCKET, Key=f"prod/{backup['key']}")
    result = world.run("backup", "verify", "acme")
    assert result.exit_code == 1 and f"on {target}: missing" in result.output


def test_an_unreachable_bucket_fails_alone(make_app, backend, tmp_path, password_hash,
                                           s3_endpoint):
    world = _world(make_app, backend, tmp_path, password_hash, s3_endpoint,
                   bucket="no-such-bucket")
    result = world.run("backup", "run", "acme")
    assert result.exit_code == 1
    assert "acme: s3://no-such-bucket/prod: " in result.output
    [backup] = world.catalogue()
    assert backup["status"] == "partial"
    assert [state for state, _ in backup["copies"].values()] == ["ok", "ok", "failed"]
    assert all(len(world.archives(m)) == 1 for m in world.media)

    _client(s3_endpoint).create_bucket(Bucket="no-such-bucket")
    result = world.run("backup", "run", "acme")
    assert result.exit_code == 0, result.output
    assert "completed copy of backup 1 → s3://no-such-bucket/prod" in result.output
