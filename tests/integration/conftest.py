"""Fixtures of the integration tests that need servers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.servers import S3Server, moto_s3_server

# The bucket every S3 test writes its artifacts to.
BUCKET = "rtml-artifacts"


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    """moto's S3 server on loopback with BUCKET created, one per test module."""
    with moto_s3_server() as server:
        server.create_bucket(BUCKET)
        yield server
