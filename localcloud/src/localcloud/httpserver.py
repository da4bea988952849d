"""localcloud's one HTTP server: a WSGI app served by hypercorn on 127.0.0.1, in a background thread.

Every local server (the AWS endpoint, the API Gateway front door, the IoT data plane, the dashboard
page) is a WSGI app run by :class:`HttpServer`. hypercorn was chosen because it serves HTTP/1.1 and
HTTP/2 cleartext on the same port (prior knowledge, and the ``Upgrade: h2c`` handshake for requests
without a body): the AWS SDK for Java v2's Netty client speaks HTTP/2, so the Kinesis Client Library
needs it from the endpoint.

The WSGI bridge is this module's own rather than hypercorn's ``WSGIWrapper``, because:

- handlers block (a Lambda ``Invoke`` runs the function, which calls back into the same endpoint),
  so they run on a large pool of daemon threads owned by the server, not on the loop's small default
  executor (which deadlocks once every thread waits on a request queued behind it);
- large request bodies are streamed to the app instead of buffered whole (hypercorn's wrapper caps
  them at 16 MiB), and chunked or HTTP/2 bodies without ``Content-Length`` read to their end
  (``wsgi.input_terminated``);
- the environ matches what werkzeug's development server (moto's server until now) gave apps:
  ``RAW_URI`` / ``REQUEST_URI`` with the path as sent (S3 keys with encoded slashes), headers with
  ``_`` in their name left out of ``HTTP_*`` keys, ``REMOTE_PORT``;
- responses with a ``Content-Length`` go out in one piece; responses without one stream chunk by
  chunk; hop-by-hop headers that HTTP/2 forbids (``Connection``, ``Transfer-Encoding``) are dropped.

Header names arrive lower-cased: hypercorn (like HTTP/2 itself) lower-cases them.

Every request must name a loopback host in ``Host`` (127.0.0.1, ``localhost`` or a name under it,
``[::1]``, or one of the server's ``allowed_hosts``), and a request that can change something (any
method but GET, HEAD and OPTIONS) that carries an ``Origin`` must come from such a host too. A web
page on any site can make the browser send requests to 127.0.0.1: DNS rebinding gets it a page whose
origin is its own name but whose address is 127.0.0.1 (so ``Host`` names that site), and a plain
cross-site form or ``fetch`` reaches the server with the site's ``Origin``. Both are refused with 403
before the app runs, so no local server acts for, or answers, a page it did not serve.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import queue
import socket
import sys
import threading
from collections.abc import Callable, Coroutine, Iterable, MutableMapping
from concurrent.futures import Executor, Future
from http import HTTPStatus
from typing import Any
from urllib.parse import quote, unquote_to_bytes

from hypercorn.asyncio import serve
from hypercorn.config import Config

LOG = logging.getLogger(__name__)

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WsgiApp = Callable[[Environ, StartResponse], Iterable[bytes]]
_Scope = MutableMapping[str, Any]
_Receive = Callable[[], Coroutine[Any, Any, MutableMapping[str, Any]]]
_Send = Callable[[MutableMapping[str, Any]], Coroutine[Any, Any, None]]
# What a handler thread hands back: status, headers, the body not sent yet, whether it streamed.
_Answer = tuple[int, list[tuple[bytes, bytes]], list[bytes], bool]

#: The environ key holding the request's headers as received: ``[(name, value), ...]`` in order,
#: repeats kept, names lower-cased. WSGI's ``HTTP_*`` keys lose order, repeats and ``_`` vs ``-``.
HEADERS_KEY = "localcloud.headers"

# Request bodies up to this size are read before the app starts (one hand-over); larger ones stream.
_BUFFERED_BODY_BYTES = 1 << 20
# Responses with a Content-Length are sent in one piece up to this size, then in pieces.
_BUFFERED_RESPONSE_BYTES = 1 << 20
# Headers that describe one connection; HTTP/2 forbids them and hypercorn frames bodies itself.
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te"}
)
_STATUS_WITHOUT_BODY_LENGTH = frozenset({204})
#: Host names every server answers to: they can only ever mean this machine. Names under
#: ``localhost`` are loopback by RFC 6761 and browsers resolve them so, without asking DNS.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
# Methods a browser may send cross-site that change nothing (so they need no Origin check).
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _host_name(authority: str) -> str:
    """The host of ``host[:port]`` / ``[v6]:port``, lower-cased, without a trailing dot."""
    authority = authority.strip().lower()
    if authority.startswith("["):
        name = authority[1:].split("]", 1)[0]
    else:
        name = authority.rsplit(":", 1)[0] if authority.count(":") == 1 else authority
    return name.rstrip(".")


def host_allowed(authority: str, extra_hosts: frozenset[str] = frozenset()) -> bool:
    """Whether ``authority`` (a Host header or an Origin's host) names this machine."""
    name = _host_name(authority)
    return bool(name) and (name in LOOPBACK_HOSTS or name.endswith(".localhost") or name in extra_hosts)


def request_refusal(
    method: str, headers: Iterable[tuple[str, str]], extra_hosts: frozenset[str] = frozenset()
) -> str | None:
    """Why a request must be refused (a foreign Host, or a write from a foreign Origin), or None."""
    host = origin = None
    for name, value in headers:
        lowered = name.lower()
        if lowered == "host" and host is None:
            host = value
        elif lowered == "origin" and origin is None:
            origin = value
    if host is None or not host_allowed(host, extra_hosts):
        return f"Host {host!r} is not a name of this machine"
    if origin is not None and method.upper() not in _SAFE_METHODS:
        scheme, _, rest = origin.partition("://")
        # "null" (sandboxed frames, file: pages) is as foreign as any other site.
        if scheme not in ("http", "https") or not host_allowed(rest.split("/", 1)[0], extra_hosts):
            return f"Origin {origin!r} may not send {method} requests here"
    return None


class _DaemonThreadPool(Executor):
    """Runs blocking handlers on up to ``max_threads`` daemon threads, started as needed.

    Unlike ``ThreadPoolExecutor``, whose threads the interpreter joins at exit, a handler still
    blocked when the process ends (an invocation waiting on a dead worker) cannot hold the exit up,
    as with the ``http.server`` daemon threads before.
    """

    def __init__(self, max_threads: int, name: str) -> None:
        self._max_threads = max_threads
        self._name = name
        self._work: queue.SimpleQueue[tuple[Future[Any], Callable[..., Any], tuple[Any, ...]] | None] = (
            queue.SimpleQueue()
        )
        self._idle = threading.Semaphore(0)
        self._lock = threading.Lock()
        self._threads = 0
        self._closed = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Queue ``fn(*args, **kwargs)``; start another thread if none is idle and the cap allows."""
        if kwargs:
            raise TypeError("keyword arguments are not supported")
        future: Future[Any] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the server is stopping")
            self._work.put((future, fn, args))
            if not self._idle.acquire(blocking=False) and self._threads < self._max_threads:
                self._threads += 1
                threading.Thread(target=self._run, name=f"{self._name}-{self._threads}", daemon=True).start()
        return future

    def _run(self) -> None:
        while (item := self._work.get()) is not None:
            future, fn, args = item
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args))
                except BaseException as exc:  # handed to whoever awaits the future
                    future.set_exception(exc)
            self._idle.release()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Let every thread end after its current handler (``wait`` is ignored: threads are daemons)."""
        with self._lock:
            self._closed = True
            threads = self._threads
        if cancel_futures:
            with contextlib.suppress(queue.Empty):
                while True:
                    item = self._work.get_nowait()
                    if item is not None:
                        item[0].cancel()
        for _ in range(threads):
            self._work.put(None)


class _StreamingInput(io.RawIOBase):
    """``wsgi.input`` for a body larger than the buffer: reads the rest from the connection."""

    def __init__(self, head: bytes, receive: _Receive, loop: asyncio.AbstractEventLoop) -> None:
        self._pending = head
        self._receive = receive
        self._loop = loop
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending and not self._done:
            message: MutableMapping[str, Any] = asyncio.run_coroutine_threadsafe(
                self._receive(), self._loop
            ).result()
            if message["type"] == "http.disconnect":
                raise ConnectionError("the client disconnected before sending the whole body")
            self._pending = bytes(message.get("body", b""))
            self._done = not message.get("more_body", False)
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


class _WsgiBridge:
    """An ASGI app that runs a WSGI app on the thread pool (see the module docstring for why)."""

    def __init__(
        self,
        app: WsgiApp,
        executor: Executor,
        started: threading.Event,
        extra_hosts: frozenset[str] = frozenset(),
    ) -> None:
        self.app = app
        self._executor = executor
        self._started = started
        self._extra_hosts = extra_hosts

    async def __call__(self, scope: _Scope, receive: _Receive, send: _Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)
        else:  # websockets are not served
            await send({"type": "websocket.close", "code": 1000})

    async def _lifespan(self, receive: _Receive, send: _Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
                self._started.set()  # hypercorn binds right after: start() may return
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: _Scope, receive: _Receive, send: _Send) -> None:
        headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in scope["headers"]]
        refusal = request_refusal(scope["method"], headers, self._extra_hosts)
        if refusal is not None:
            # Before the body is read or the app runs: a foreign page gets nothing done here.
            LOG.warning("refused %s %s: %s", scope["method"], scope.get("path", ""), refusal)
            answer = json.dumps({"message": refusal}).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 403,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(answer)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": answer, "more_body": False})
            return
        loop = asyncio.get_running_loop()
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            if chunk:
                chunks.append(bytes(chunk))
                size += len(chunk)
            if not message.get("more_body", False):
                body: io.IOBase = io.BytesIO(b"".join(chunks))
                break
            if size >= _BUFFERED_BODY_BYTES:
                body = io.BufferedReader(_StreamingInput(b"".join(chunks), receive, loop), 1 << 16)
                break
        environ = _environ(scope, body)
        status, headers, pieces, streamed = await self._in_thread(loop, environ, send)
        if not streamed:
            await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"".join(pieces), "more_body": False})

    def _in_thread(
        self, loop: asyncio.AbstractEventLoop, environ: Environ, send: _Send
    ) -> asyncio.Future[_Answer]:
        """Run the app on the pool; the result arrives on the loop, unless the loop has gone."""
        waiter: asyncio.Future[_Answer] = loop.create_future()

        def hand_over(done: Future[_Answer]) -> None:
            if waiter.cancelled():
                return
            if done.cancelled():
                waiter.cancel()
            elif (error := done.exception()) is not None:
                waiter.set_exception(error)
            else:
                waiter.set_result(done.result())

        def finished(done: Future[_Answer]) -> None:
            # A handler that outlives stop() finds the loop closed: nobody waits for it any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(hand_over, done)

        self._executor.submit(self._run_app, environ, send, loop).add_done_callback(finished)
        return waiter

    def _run_app(self, environ: Environ, send: _Send, loop: asyncio.AbstractEventLoop) -> _Answer:
        """Call the app on a pool thread: (status, headers, body not yet sent, whether it streamed)."""
        response: dict[str, Any] = {}
        streamed = False

        def send_now(message: dict[str, Any]) -> None:
            asyncio.run_coroutine_threadsafe(send(message), loop).result()

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[..., Any]:
            if exc_info is not None and streamed:
                raise exc_info[1].with_traceback(exc_info[2])
            response["status"] = int(status.split(" ", 1)[0])
            response["headers"] = headers
            return write

        pieces: list[bytes] = []

        def write(data: bytes) -> None:  # WSGI's legacy write(): rare, so sent as it comes
            nonlocal streamed
            if not streamed:
                send_now(_start_message(response))
                streamed = True
            send_now({"type": "http.response.body", "body": bytes(data), "more_body": True})

        try:
            result = self.app(environ, start_response)
        except Exception:
            LOG.exception("%s %s failed", environ["REQUEST_METHOD"], environ["RAW_URI"])
            return 500, [(b"content-length", b"0")], [], False
        try:
            limit = _BUFFERED_RESPONSE_BYTES if _has_length(response) else 0
            buffered = 0
            for chunk in result:
                if not chunk:
                    continue
                if streamed:
                    send_now({"type": "http.response.body", "body": bytes(chunk), "more_body": True})
                    continue
                pieces.append(bytes(chunk))
                buffered += len(chunk)
                if buffered > limit:  # a stream, or a large body: send what there is, then the rest
                    send_now(_start_message(response))
                    streamed = True
                    send_now({"type": "http.response.body", "body": b"".join(pieces), "more_body": True})
                    pieces = []
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        if streamed:
            return 0, [], [], True
        if "status" not in response:
            raise RuntimeError("the WSGI app did not call start_response")
        return response["status"], _headers(response), pieces, False


def _has_length(response: dict[str, Any]) -> bool:
    return any(name.lower() == "content-length" for name, _ in response.get("headers", ()))


def _headers(response: dict[str, Any]) -> list[tuple[bytes, bytes]]:
    status = response["status"]
    headers = []
    for name, value in response["headers"]:
        lowered = name.lower()
        if lowered in _HOP_BY_HOP:
            continue
        if lowered == "content-length" and (status < 200 or status in _STATUS_WITHOUT_BODY_LENGTH):
            continue
        # Spelled as the app wrote it: HTTP/1.1 clients see that; h2 lower-cases names itself.
        headers.append((name.encode("latin-1"), str(value).encode("latin-1")))
    return headers


def _start_message(response: dict[str, Any]) -> dict[str, Any]:
    if "status" not in response:
        raise RuntimeError("the WSGI app did not call start_response")
    return {"type": "http.response.start", "status": response["status"], "headers": _headers(response)}


def _environ(scope: _Scope, body: io.IOBase) -> Environ:
    """The WSGI environ werkzeug's development server would build for this request."""
    raw_path: bytes = scope.get("raw_path") or scope["path"].encode("utf-8")
    query: bytes = scope.get("query_string", b"")
    target = raw_path + (b"?" + query if query else b"")
    server = scope.get("server") or ("127.0.0.1", 80)
    client = scope.get("client") or ("127.0.0.1", 0)
    received = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in scope["headers"]]
    environ: Environ = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": "",
        # WSGI carries the decoded path's bytes as latin-1 text.
        "PATH_INFO": unquote_to_bytes(raw_path).decode("latin-1"),
        "QUERY_STRING": query.decode("latin-1"),
        "RAW_URI": target.decode("latin-1"),
        "REQUEST_URI": target.decode("latin-1"),
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1]),
        "SERVER_PROTOCOL": f"HTTP/{scope['http_version']}",
        "REMOTE_ADDR": str(client[0]),
        "REMOTE_PORT": int(client[1]),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": body,
        # The body ends where the stream ends, also when a chunked or HTTP/2 request has no length.
        "wsgi.input_terminated": True,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        HEADERS_KEY: received,
    }
    for name, value in received:
        if "_" in name:
            continue  # as werkzeug: X_Foo could otherwise pass itself off as X-Foo
        key = name.upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = f"HTTP_{key}"
        previous = environ.get(key)
        separator = "; " if key == "HTTP_COOKIE" else ","
        environ[key] = value if previous is None else f"{previous}{separator}{value}"
    return environ


def request_headers(environ: Environ) -> list[tuple[str, str]]:
    """The request's headers in order with repeats (from :class:`HttpServer`; else from ``HTTP_*``)."""
    received = environ.get(HEADERS_KEY)
    if received is not None:
        return list(received)
    headers = [
        (key[5:].replace("_", "-").title(), str(value))
        for key, value in environ.items()
        if key.startswith("HTTP_")
    ]
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers.append((key.replace("_", "-").title(), str(environ[key])))
    return headers


def respond(
    start_response: StartResponse, status: int, headers: Iterable[tuple[str, str]], body: bytes
) -> list[bytes]:
    """Answer with ``body`` in one piece: the WSGI status line, ``headers`` and a Content-Length.

    ``headers`` must not carry their own framing (Content-Length, Transfer-Encoding, Connection).
    """
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:  # a status code Python does not name
        phrase = "Unknown"
    start_response(f"{status} {phrase}", [*headers, ("Content-Length", str(len(body)))])
    return [body]


def request_target(environ: Environ) -> str:
    """The request target as sent (path still percent-encoded, with the query)."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        return str(raw)
    path = quote(environ.get("PATH_INFO", "").encode("latin-1"))
    query = environ.get("QUERY_STRING", "")
    return f"{path}?{query}" if query else path


class HttpServer:
    """Serves one WSGI app over HTTP/1.1 and HTTP/2 cleartext on ``host:port`` (0 picks a free port).

    hypercorn runs on its own event loop in a background thread; the app runs on up to
    ``max_threads`` daemon threads, enough for handlers that wait on other requests to the same
    server. :meth:`bind` takes the port early (so the URL is known before :meth:`start`);
    :meth:`start` binds if needed. After :meth:`stop`, :meth:`start` serves again on the requested
    port (a new one for port 0).
    """

    def __init__(
        self,
        app: WsgiApp,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        name: str = "http",
        max_threads: int = 256,
        keep_alive_timeout_s: float = 60.0,
        allowed_hosts: Iterable[str] = (),
    ) -> None:
        """``allowed_hosts``: more host names to answer to besides the loopback ones (see above)."""
        self.app = app
        self.host = host
        extra = {h.lower() for h in allowed_hosts}
        if host not in ("0.0.0.0", "::", ""):
            extra.add(_host_name(host))
        self._extra_hosts = frozenset(extra)
        self.name = name
        self._requested_port = port
        self._max_threads = max_threads
        self._keep_alive_timeout_s = keep_alive_timeout_s
        self._socket: socket.socket | None = None
        self._port: int | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._executor: _DaemonThreadPool | None = None
        self._error: BaseException | None = None

    # -- lifecycle --------------------------------------------------------------------------------
    def bind(self) -> None:
        """Take the port now; raise ``OSError`` when it is in use."""
        if self._socket is not None:
            return
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                sock.bind((self.host, self._requested_port))
            except OSError as exc:
                raise OSError(exc.errno, f"port {self._requested_port} on {self.host} is in use") from exc
            # Listening now queues early connections until the loop accepts them.
            sock.listen(1024)
        except BaseException:
            sock.close()
            raise
        self._socket = sock
        self._port = int(sock.getsockname()[1])

    def start(self, timeout: float = 10.0) -> None:
        """Serve in a background thread; returns once requests are being accepted."""
        if self._thread is not None:
            return
        self.bind()
        assert self._socket is not None
        started = threading.Event()
        self._error = None
        self._executor = _DaemonThreadPool(self._max_threads, f"{self.name}-handler")
        bridge = _WsgiBridge(self.app, self._executor, started, self._extra_hosts)
        # hypercorn takes the socket over (and closes it on shutdown): hand it the descriptor.
        fd = self._socket.detach()
        self._socket = None
        self._thread = threading.Thread(
            target=self._serve, args=(bridge, fd, started), name=f"{self.name}-server", daemon=True
        )
        self._thread.start()
        if not started.wait(timeout) or self._error is not None:
            self.stop()
            raise RuntimeError(f"the {self.name} server did not start") from self._error

    def _serve(self, bridge: _WsgiBridge, fd: int, started: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        config = Config()
        config.bind = [f"fd://{fd}"]
        config.accesslog = None
        config.errorlog = LOG
        config.include_server_header = False
        config.keep_alive_timeout = self._keep_alive_timeout_s
        # In-flight requests get this long to finish once stop() is called.
        config.graceful_timeout = 1.0
        config.backlog = 1024
        try:
            self._loop = loop
            self._stopping = loop.run_until_complete(_make_event())
            # hypercorn types ASGI messages as TypedDicts; the bridge handles them as plain mappings.
            app: Any = bridge
            loop.run_until_complete(serve(app, config, shutdown_trigger=self._stopping.wait, mode="asgi"))
        except BaseException as exc:
            self._error = exc
            LOG.exception("the %s server failed", self.name)
            with contextlib.suppress(OSError):
                socket.socket(fileno=fd).close()  # hypercorn may not have taken it over yet
        finally:
            started.set()
            _cancel_remaining(loop)
            loop.close()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and release the port, within about ``timeout`` seconds.

        Requests still running after a short grace period are abandoned: their threads finish on
        their own, but nothing more is sent to their clients.
        """
        thread, loop, stopping = self._thread, self._loop, self._stopping
        self._thread = self._loop = self._stopping = None
        if thread is not None:
            if loop is not None and stopping is not None:
                with contextlib.suppress(RuntimeError):  # the loop has already ended
                    loop.call_soon_threadsafe(stopping.set)
            thread.join(timeout)
            if thread.is_alive():
                LOG.warning("the %s server did not stop within %.1f s", self.name, timeout)
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        if self._socket is not None:  # bound but never started
            self._socket.close()
            self._socket = None

    def __enter__(self) -> HttpServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- addresses --------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """True between start() and stop()."""
        return self._thread is not None

    @property
    def port(self) -> int:
        """The bound port (the latest one, after a stop)."""
        if self._port is None:
            raise RuntimeError(f"the {self.name} server has not been bound")
        return self._port

    @property
    def url(self) -> str:
        """``http://<host>:<port>``."""
        return f"http://{self.host}:{self.port}"


async def _make_event() -> asyncio.Event:
    # Created inside the loop's thread, so it belongs to that loop.
    return asyncio.Event()


def _cancel_remaining(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what is left on the loop (connections still open after the grace period)."""
    tasks = asyncio.all_tasks(loop)
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())


__all__ = [
    "HEADERS_KEY",
    "LOOPBACK_HOSTS",
    "HttpServer",
    "StartResponse",
    "WsgiApp",
    "host_allowed",
    "request_headers",
    "request_refusal",
    "request_target",
    "respond",
]
