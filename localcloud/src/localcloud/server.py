"""One local AWS endpoint: moto's WSGI app on 127.0.0.1, serving every moto service.

moto routes requests by the SigV4 credential scope, so a single port serves Kinesis, DynamoDB,
DynamoDB Streams, SQS, SNS, S3, CloudWatch, Logs, IAM, CloudFormation, Lambda, Events and STS.
The app is the one moto's own server runs (``DomainDispatcherApplication``), served by localcloud's
:class:`~localcloud.httpserver.HttpServer` (HTTP/1.1 and HTTP/2 cleartext on the one port). It runs
in this process, so localcloud can also reach moto's backends directly.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.core.request import (
    PRESERVED_HEADER_NAMES_ENVIRON_KEY,
    environ_key_for_header,
    should_preserve_original_header_name,
)
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

from localcloud.aws import DEFAULT_REGION
from localcloud.httpserver import HttpServer, WsgiApp, request_headers

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
        _preserve_metadata_header_names(environ)
        lock = self._locks.get(_signing_service(environ) or "")
        if lock is None:
            return self.default(environ, start_response)
        with lock:
            # Materialize the body inside the lock: moto may build it lazily.
            return list(self.default(environ, start_response))


def _preserve_metadata_header_names(environ: dict[str, Any]) -> None:
    """What moto's own server adds to the environ: S3 metadata headers whose names have a ``_``.

    WSGI servers leave such headers out of the ``HTTP_*`` keys (``X_Foo`` could pose as ``X-Foo``),
    but S3 object metadata keys may contain ``_``; moto reads them back under the names recorded here.
    """
    headers = request_headers(environ)
    if not any("_" in name for name, _ in headers):
        return
    dashed = {environ_key_for_header(name) for name, _ in headers if "_" not in name}
    names: dict[str, str] = {}
    values: dict[str, list[str]] = {}
    for name, value in headers:
        key = environ_key_for_header(name)
        if should_preserve_original_header_name(name) and key not in dashed:
            names.setdefault(key, name)
            values.setdefault(key, []).append(value)
    for key, key_values in values.items():
        environ[key] = ",".join(key_values)
    environ[PRESERVED_HEADER_NAMES_ENVIRON_KEY] = names


class LocalEndpoint:
    """moto's services behind ``endpoint_url``; ``port=0`` picks a free port.

    HTTP/1.1 and HTTP/2 cleartext (prior knowledge or ``Upgrade: h2c``) are both served on the port.

    Other local servers can share the port with :meth:`mount`: requests whose path starts with the
    prefix go to their WSGI app. S3 takes any other path as a bucket, so prefixes should be names no
    bucket can have, such as ``/_localcloud/api`` (bucket names never start with ``_``).
    """

    def __init__(self, port: int = 0, region: str = DEFAULT_REGION) -> None:
        self.region = region
        self._requested_port = port
        self._server: HttpServer | None = None
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
        """Start serving; returns once the socket is bound (``OSError`` if the port is taken)."""
        if self._server is not None:
            return
        # The app moto's ThreadedMotoServer builds: routes each request to a service's backend app.
        moto_app = DomainDispatcherApplication(create_backend_app)
        self._dispatcher = _PrefixDispatcher(moto_app, self._mounts, self._middlewares)
        # Many threads: an Invoke holds one while the function calls back into this endpoint.
        server = HttpServer(self._dispatcher, port=self._requested_port, name="aws-endpoint", max_threads=512)
        server.start()
        self._server = server
        self._port = server.port

    def stop(self) -> None:
        """Stop serving and release the port (moto's in-memory state is left as it is)."""
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


# WsgiApp is re-exported: the middlewares (limits, metrics, faults) import it from here.
__all__ = ["LocalEndpoint", "Middleware", "WsgiApp", "aws_service_of"]
