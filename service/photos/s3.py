"""Photo files in an S3-compatible bucket (AWS S3, MinIO, Aliyun OSS, Tencent COS, …):
:class:`S3Store`, chosen when ``CITYGRID_PHOTO_S3_BUCKET`` is set.

The same content-addressed keys as the folder (``<prefix>ab/cd/<sha256>.<variant>``) and the
same two steps around the commit: ``stage`` uploads under ``<prefix>.staging/<random>``, a
key no reader asks for; ``promote`` (after the commit) copies it to the final key — an S3
object appears whole or not at all — and deletes the staged one; ``discard`` (rollback)
deletes it. A process that dies between stage and commit leaves a staged object, as the
folder leaves a file in ``.staging``: never read, and removed by :meth:`clear_staging`
(called by the retention sweep).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from functools import lru_cache
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from service.errors import NotFound
from service.photos.store import PhotoStore

_STAGING = ".staging/"
_MISSING = {"NoSuchKey", "404", "NotFound"}


@lru_cache(maxsize=8)
def _client(
    endpoint_url: str | None,
    region: str | None,
    addressing_style: str,
    access_key_id: str | None,
    secret_access_key: str | None,
) -> Any:
    """One client per configuration: boto3 clients are thread-safe and costly to build
    (a request must not pay for one)."""
    session = boto3.session.Session()  # clients of one session may be shared by threads
    return session.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        config=Config(
            s3={"addressing_style": addressing_style},
            retries={"max_attempts": 3, "mode": "standard"},
            # a bucket that stops answering fails the request in seconds instead of holding
            # one of the admitted requests' threads for boto3's default minute
            connect_timeout=5,
            read_timeout=30,
        ),
    )


class S3Store(PhotoStore):
    """Objects in ``bucket`` under ``prefix``; credentials from the arguments, else boto3's
    usual chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, a profile, an instance
    role)."""

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        addressing_style: str = "auto",
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
    ) -> None:
        self.bucket = bucket
        # "photos" means the folder photos/, not keys starting "photosab/…"
        self.prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        self.client = _client(
            endpoint_url, region, addressing_style, access_key_id, secret_access_key
        )

    def stage(self, key: str, data: bytes) -> str:
        """Upload under a fresh staging key (the upload has finished when this returns)."""
        token = f"{self.prefix}{_STAGING}{uuid.uuid4().hex}"
        self.client.put_object(Bucket=self.bucket, Key=token, Body=data)
        return token

    def promote(self, key: str, token: str) -> None:
        """Copy the staged object to ``key`` (same bytes if another upload got there
        first), then delete the staged one."""
        self.client.copy_object(
            Bucket=self.bucket,
            Key=self.prefix + key,
            CopySource={"Bucket": self.bucket, "Key": token},
        )
        self.client.delete_object(Bucket=self.bucket, Key=token)

    def discard(self, token: str) -> None:
        """Delete the staged object."""
        self.client.delete_object(Bucket=self.bucket, Key=token)

    def read(self, key: str) -> bytes:
        """The object's bytes."""
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING:
                raise NotFound("the photo's file is missing from the store", field="file") from exc
            raise
        return bytes(answer["Body"].read())

    def delete(self, key: str) -> None:
        """Delete the object (S3 answers a missing key with success too)."""
        self.client.delete_object(Bucket=self.bucket, Key=self.prefix + key)

    def keys(self) -> Iterator[str]:
        """Keys of the stored objects under the prefix (staging left out)."""
        for obj in self._objects(self.prefix):
            key = obj["Key"][len(self.prefix) :]
            if not key.startswith(_STAGING):
                yield key

    def clear_staging(self, before: datetime) -> int:
        """Delete staged objects uploaded before ``before`` (left by a process that died
        between stage and commit); how many."""
        old = [
            o["Key"] for o in self._objects(self.prefix + _STAGING) if o["LastModified"] < before
        ]
        for token in old:
            self.client.delete_object(Bucket=self.bucket, Key=token)
        return len(old)

    def _objects(self, prefix: str) -> Iterator[dict[str, Any]]:
        pages = self.client.get_paginator("list_objects_v2")
        for page in pages.paginate(Bucket=self.bucket, Prefix=prefix):
            yield from page.get("Contents", [])
