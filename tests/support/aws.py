"""AWS without AWS: moto's server mode on loopback, reached through the real boto3 clients.

The server runs in this test process (moto's ``ThreadedMotoServer``), so a test-only extension
of a moto backend (an API moto lacks) is served by the same server. The toolkit never knows:
it sees a standard ``AWS_ENDPOINT_URL`` and fake credentials, as with any S3-compatible store.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from mlops_kit.process.ports import free_ports

REGION = "us-east-1"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",  # noqa: S105 - moto's fake credentials
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}


@dataclass(frozen=True)
class MotoServer:
    """A moto server on 127.0.0.1 and the environment that points standard clients at it."""

    url: str

    @property
    def environment(self) -> dict[str, str]:
        return {**CREDENTIALS, "AWS_ENDPOINT_URL": self.url}

    def client(self, service: str):  # type: ignore[no-untyped-def]
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    def reset(self) -> None:
        """Forget every resource (moto's own reset API), so tests start from an empty account."""
        import httpx

        httpx.post(f"{self.url}/moto-api/reset", timeout=10).raise_for_status()


@contextlib.contextmanager
def moto_server() -> Iterator[MotoServer]:
    """Start moto's server on a free loopback port; stop it on exit."""
    from moto.server import ThreadedMotoServer

    (port,) = free_ports("127.0.0.1")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield MotoServer(url=f"http://127.0.0.1:{port}")
    finally:
        server.stop()
