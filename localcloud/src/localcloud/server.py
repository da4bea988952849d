"""One local AWS endpoint: moto in server mode on 127.0.0.1, serving every moto service.

moto routes requests by the SigV4 credential scope, so a single port serves Kinesis, DynamoDB,
DynamoDB Streams, SQS, SNS, S3, CloudWatch, Logs, IAM, CloudFormation, Lambda, Events and STS.
The server runs in this process, so localcloud can also reach moto's backends directly.
"""

from __future__ import annotations

import logging
import re
import socket
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.server import ThreadedMotoServer

from localcloud.aws import DEFAULT_REGION

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


# Services whose moto backends are not safe under concurrent requests, while AWS makes every call
# atomic: moto assigns Kinesis sequence numbers without a lock (concurrent PutRecords overwrite each
# other's records), evaluates DynamoDB conditions and writes in separate steps (and rolls a cancelled
# transaction back by restoring a table snapshot, wiping concurrent writes), and SQS receives can hand
# one message to two consumers. Requests to them are serialized per service. Lambda is left out on
# purpose: an Invoke runs the function, which calls back into these services.
_SERIALIZED_SERVICES = frozenset({"dynamodb", "kinesis", "sqs"})
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")


def _signing_service(environ: dict[str, Any]) -> str | None:
    """The service a SigV4-signed request is for (DynamoDB Streams signs as ``dynamodb``)."""
    match = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    return match.group(1) if match else None


Middleware = Callable[[WsgiApp], WsgiApp]


def aws_service_of(environ: dict[str, Any]) -> str | None:
    """The AWS service a request to the endpoint is for, from its SigV4 credential scope."""
    return _signing_service(environ)


class _PrefixDispatcher:
    """Sends requests under a mounted path prefix to that app, everything else to moto.

    Requests to moto pass through the middlewares (outermost first) inside the per-service lock, so
    a middleware that counts or rewrites calls (service limits, fault injection) sees them one at a
    time per service, as the backend does.
    """

    def __init__(self, default: WsgiApp, mounts: dict[str, WsgiApp], middlewares: list[Middleware]) -> None:
        self.moto = default
        self.mounts = mounts
        self.middlewares = middlewares
        self.default = default
        self._locks = {service: threading.Lock() for service in _SERIALIZED_SERVICES}
        self.rebuild()

    def rebuild(self) -> None:
        """Recompose the middleware chain around moto (after a middleware is added or removed)."""
        app = self.moto
        for middleware in reversed(self.middlewares):
            app = middleware(app)
        self.default = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        for prefix, app in self.mounts.items():
            if path == prefix or path.startswith(prefix + "/"):
                return app(environ, start_response)
        lock = self._locks.get(_signing_service(environ) or "")
        if lock is None:
            return self.default(environ, start_response)
        with lock:
            # Materialize the body inside the lock: moto may build it lazily.
            return list(self.default(environ, start_response))


def _ensure_port_free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise OSError(exc.errno, f"port {port} on 127.0.0.1 is in use") from exc


class LocalEndpoint:
    """The moto server behind ``endpoint_url``; ``port=0`` picks a free port.

    Other local servers can share the port with :meth:`mount`: requests whose path starts with the
    prefix go to their WSGI app. S3 takes any other path as a bucket, so prefixes should be names no
    bucket can have, such as ``/_localcloud/api`` (bucket names never start with ``_``).
    """

    def __init__(self, port: int = 0, region: str = DEFAULT_REGION) -> None:
        self.region = region
        self._requested_port = port
        self._server: ThreadedMotoServer | None = None
        self._port: int | None = None
        self._mounts: dict[str, WsgiApp] = {}
        self._middlewares: list[Middleware] = []
        self._dispatcher: _PrefixDispatcher | None = None

    def mount(self, prefix: str, app: WsgiApp) -> str:
        """Serve ``app`` under ``prefix`` on this endpoint; returns the prefix's URL."""
        if not prefix.startswith("/") or prefix.endswith("/"):
            raise ValueError("a prefix starts with '/' and does not end with one, e.g. /_localcloud/api")
        self._mounts[prefix] = app
        return f"{self.endpoint_url}{prefix}" if self._port is not None else prefix

    def add_middleware(self, middleware: Middleware) -> None:
        """Wrap moto's WSGI app with ``middleware`` (applied to every AWS API call, innermost last)."""
        self._middlewares.append(middleware)
        if self._dispatcher is not None:
            self._dispatcher.rebuild()

    def remove_middleware(self, middleware: Middleware) -> None:
        """Undo :meth:`add_middleware`."""
        self._middlewares.remove(middleware)
        if self._dispatcher is not None:
            self._dispatcher.rebuild()

    def unmount(self, prefix: str) -> None:
        """Stop serving ``prefix``."""
        self._mounts.pop(prefix, None)

    def start(self) -> None:
        """Start serving; returns once the socket is bound."""
        if self._server is not None:
            return
        # werkzeug logs one line per request at INFO: far too chatty for a streaming workload.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        if self._requested_port:
            # moto's server thread exits on a taken port without telling start(), which then waits
            # forever: find out first.
            _ensure_port_free(self._requested_port)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=self._requested_port, verbose=False)
        server.start()
        # The werkzeug server reads its app per request, so wrapping it now routes every request.
        inner = server._server
        if inner is not None:
            self._dispatcher = _PrefixDispatcher(inner.app, self._mounts, self._middlewares)
            inner.app = self._dispatcher
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
