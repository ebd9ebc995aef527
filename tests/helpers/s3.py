"""A real S3-compatible HTTP server for tests: moto's server mode on a free loopback port
(the service talks to it over HTTP with boto3, exactly as to a bucket elsewhere)."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from service.settings import AppSettings

# moto accepts any credentials; these are not secrets
ACCESS_KEY, SECRET_KEY, REGION = "citygrid-test", "citygrid-test-secret", "cn-north-1"


@dataclass
class S3Server:
    """Where the test server listens."""

    endpoint_url: str

    def client(self) -> Any:
        """A boto3 client of the test server (the test's own view of the bucket)."""
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=Config(s3={"addressing_style": "path"}),
        )

    def new_bucket(self) -> str:
        """A fresh empty bucket (one per test: nothing leaks between tests)."""
        name = f"photos-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(
            Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        return name

    def objects(self, bucket: str) -> list[str]:
        """Every key in ``bucket``, staging included."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def running_s3_server() -> Iterator[S3Server]:
    """Start moto's threaded server on 127.0.0.1, yield it, stop it."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield S3Server(f"http://127.0.0.1:{port}")
    finally:
        server.stop()


def everything_stored(settings: AppSettings) -> list[str]:
    """Every file the configured photo store holds, staging included: the folder's paths
    relative to it, or the bucket's keys (read by the test, not through the service)."""
    p = settings.photos
    if p.s3_bucket and p.s3_endpoint_url:
        return S3Server(p.s3_endpoint_url).objects(p.s3_bucket)
    root = settings.photo_dir()
    if not root.exists():
        return []
    return sorted(f.relative_to(root).as_posix() for f in root.rglob("*") if f.is_file())
