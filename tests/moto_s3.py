"""An S3-protocol server on the loopback address for the tests: moto's server, started as a
process of its own (``python -m moto.server -H 127.0.0.1 -p PORT``) with one bucket.

Nothing reaches another address: every client (pyarrow in this process and in the
drivers the tests start, boto3 for the bucket) is pointed at it through AWS_ENDPOINT_URL,
with fake credentials and the instance metadata lookup off.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

BUCKET = "adstudy-test"
START_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class S3Server:
    """A running moto server; ``env`` is what a client (this process or a child) needs."""

    def __init__(self, log: Path):
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.env = {
            "AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=log.open("w"),
        )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=1).close()
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.1)

    def make_bucket(self) -> None:
        import boto3

        client = boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                              aws_access_key_id="testing", aws_secret_access_key="testing")
        client.create_bucket(Bucket=BUCKET)

    def uri(self, prefix: str) -> str:
        return f"s3://{BUCKET}/{prefix}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


@contextlib.contextmanager
def patched_environ(changes: dict[str, str]) -> Iterator[None]:
    """This process's environment with ``changes`` for the block, restored after."""
    saved = {k: os.environ.get(k) for k in changes}
    os.environ.update(changes)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def s3_server(log: Path) -> Iterator[S3Server]:
    """A moto server with BUCKET, and this process's environment pointed at it."""
    server = S3Server(log)
    try:
        server.wait_ready()
        with patched_environ(server.env):
            server.make_bucket()
            yield server
    finally:
        server.stop()
