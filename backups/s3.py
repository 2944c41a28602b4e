"""An S3-compatible bucket as a backup target (``s3://bucket/prefix``), through boto3.

An object appears only once its upload completed, so a reader never sees half an archive.
Credentials come from boto3's usual sources (``AWS_ACCESS_KEY_ID``…); the endpoint from
``QALITEL_BACKUP_S3_ENDPOINT`` for a service other than AWS.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from backups.errors import TargetError


class S3Target:
    def __init__(self, bucket: str, prefix: str, endpoint: str = "") -> None:
        self.bucket, self.prefix, self.endpoint = bucket, prefix, endpoint
        self.name = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3  # only installations with an s3:// target pay for it

            self._client = boto3.client("s3", endpoint_url=self.endpoint or None)
        return self._client

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _fail(self, exc: Exception) -> TargetError:
        return TargetError(f"{self.name}: {exc}")

    def put(self, key: str, source: Path) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.upload_file(str(source), self.bucket, self._key(key))
        except (BotoCoreError, ClientError) as exc:
            raise self._fail(exc) from exc
        except Exception as exc:  # boto3's S3UploadFailedError and kin
            raise self._fail(exc) from exc

    @contextlib.contextmanager
    def open(self, key: str) -> Iterator[BinaryIO]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
        except (BotoCoreError, ClientError) as exc:
            raise self._fail(exc) from exc
        try:
            yield body
        finally:
            body.close()

    def size(self, key: str) -> int | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise self._fail(exc) from exc
        except BotoCoreError as exc:
            raise self._fail(exc) from exc
        return int(head["ContentLength"])

    def delete(self, key: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except (BotoCoreError, ClientError) as exc:
            raise self._fail(exc) from exc
