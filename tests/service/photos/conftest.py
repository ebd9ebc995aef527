"""The photo tests run against each store: the folder and an S3-compatible bucket served
over HTTP by a real server (moto's server mode) started here."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers.s3 import S3Server, running_s3_server


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    yield from running_s3_server()
