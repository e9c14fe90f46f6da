"""An S3-protocol server for the tests: moto's server on 127.0.0.1 and a free port, with a
bucket and the (fake) credentials every client of it uses. Never any other address."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator

import boto3
from moto.server import ThreadedMotoServer
from moto_s3 import free_port, patched_environ

# What a node's environment holds on a cloud (an instance role's credentials, a region);
# no client may look for an instance role: that would be a request off the loopback.
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "adstudy-test",
    "AWS_SECRET_ACCESS_KEY": "adstudy-test",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


@dataclasses.dataclass(frozen=True)
class S3:
    port: int
    bucket: str

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def uri(self, key: str) -> str:
        """s3://BUCKET/KEY as pyarrow (and so adstudy) opens it on this server."""
        return f"s3://{self.bucket}/{key}?endpoint_override={self.endpoint}&scheme=http"

    def client(self, service: str = "s3"):
        """A boto3 client of this server (moto serves every AWS service it mocks)."""
        return boto3.client(service, endpoint_url=f"http://{self.endpoint}",
                            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                            region_name=CREDENTIALS["AWS_REGION"])

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


@contextlib.contextmanager
def s3_server(bucket: str = "adstudy-test") -> Iterator[S3]:
    """The server runs in a thread of this process while the block runs; this process's
    environment holds CREDENTIALS meanwhile (restored after)."""
    with patched_environ(CREDENTIALS):
        port = free_port()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        try:
            s3 = S3(port, bucket)
            s3.client().create_bucket(Bucket=bucket)
            yield s3
        finally:
            server.stop()
