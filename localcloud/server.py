"""One local AWS endpoint: moto in server mode on 127.0.0.1, serving every moto service.

moto routes requests by the SigV4 credential scope, so a single port serves Kinesis, DynamoDB,
DynamoDB Streams, SQS, SNS, S3, CloudWatch, Logs, IAM, CloudFormation, Lambda, Events and STS.
The server runs in this process, so localcloud can also reach moto's backends directly.
"""

from __future__ import annotations

import logging

from moto.server import ThreadedMotoServer

from localcloud.aws import DEFAULT_REGION


class LocalEndpoint:
    """The moto server behind ``endpoint_url``; ``port=0`` picks a free port."""

    def __init__(self, port: int = 0, region: str = DEFAULT_REGION) -> None:
        self.region = region
        self._requested_port = port
        self._server: ThreadedMotoServer | None = None
        self._port: int | None = None

    def start(self) -> None:
        """Start serving; returns once the socket is bound."""
        if self._server is not None:
            return
        # werkzeug logs one line per request at INFO: far too chatty for a streaming workload.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=self._requested_port, verbose=False)
        server.start()
        self._server = server
        self._port = server.get_host_and_port()[1]

    def stop(self) -> None:
        """Stop serving (moto's in-memory state is left as it is)."""
        if self._server is None:
            return
        self._server.stop()
        self._server = None

    @property
    def running(self) -> bool:
        """True between start() and stop()."""
        return self._server is not None

    @property
    def port(self) -> int:
        """The bound port."""
        if self._port is None:
            raise RuntimeError("the endpoint has not been started")
        return self._port

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"
