"""The IoT data-plane HTTP endpoint: what boto3's ``iot-data`` client calls.

- ``Publish``: ``POST /topics/{topic}?qos=0|1&retain=true|false`` with the payload as the body.
- ``GetRetainedMessage``: ``GET /retainedMessage/{topic}``.
- ``ListRetainedMessages``: ``GET /retainedMessage?maxResults=&nextToken=``.

Requests are not authenticated (any SigV4 signature, or none, is accepted). Errors are answered in
AWS's REST-JSON shape (``x-amzn-ErrorType`` header and ``{"message": ...}``) so SDKs raise the
right exception classes. Device shadows are not served.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from localcloud.iot.broker import RetainedMessage
from localcloud.iot.messages import MAX_PAYLOAD_BYTES
from localcloud.iot.topics import InvalidTopicError, validate_topic

LOG = logging.getLogger(__name__)


class DataPlaneBackend(Protocol):
    """What the data plane publishes into and reads retained messages from."""

    def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> Any:
        """Publish one message (subscribers and rules see it)."""
        ...

    def retained_messages(self) -> list[RetainedMessage]:
        """Every retained message."""
        ...


class DataPlaneError(Exception):
    """An error answered to the client with AWS's error code and HTTP status."""

    def __init__(self, status: HTTPStatus, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def _bad_request(message: str) -> DataPlaneError:
    return DataPlaneError(HTTPStatus.BAD_REQUEST, "InvalidRequestException", message)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    backend: DataPlaneBackend


class _Handler(BaseHTTPRequestHandler):
    # Keep-alive: boto3 reuses connections.
    protocol_version = "HTTP/1.1"
    # Headers and body leave in separate writes; with Nagle's algorithm and the client's delayed
    # ACK, every answer would wait ~40 ms.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        LOG.debug("%s - " + format, self.address_string(), *args)

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        body = self._read_body()
        url = urlsplit(self.path)
        query = {key: values[-1] for key, values in parse_qs(url.query).items()}
        path = url.path
        # The API model spells it /retainedMessage; answer either case.
        lowered = path.lower()
        try:
            if method == "POST" and path.startswith("/topics/"):
                self._publish(unquote(path[len("/topics/") :]), query, body)
            elif method == "GET" and lowered.startswith("/retainedmessage/"):
                self._get_retained(unquote(path[len("/retainedmessage/") :]))
            elif method == "GET" and lowered.rstrip("/") == "/retainedmessage":
                self._list_retained(query)
            elif path.startswith("/things/") or path.startswith("/api/things/shadow/"):
                raise DataPlaneError(
                    HTTPStatus.NOT_IMPLEMENTED,
                    "NotImplementedException",
                    "device shadows are not served locally",
                )
            else:
                raise DataPlaneError(
                    HTTPStatus.NOT_FOUND,
                    "ResourceNotFoundException",
                    f"no data-plane operation at {method} {path}",
                )
        except DataPlaneError as exc:
            self._answer(exc.status, {"message": str(exc)}, error_code=exc.code)
        except Exception as exc:
            LOG.exception("data-plane request %s %s failed", method, path)
            self._answer(
                HTTPStatus.INTERNAL_SERVER_ERROR, {"message": str(exc)}, error_code="InternalFailureException"
            )

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _publish(self, topic: str, query: dict[str, str], body: bytes) -> None:
        qos_text = query.get("qos", "0")
        if qos_text not in ("0", "1"):
            raise _bad_request(f"qos must be 0 or 1, got {qos_text!r}")
        retain = query.get("retain", "false").lower() == "true"
        if len(body) > MAX_PAYLOAD_BYTES:
            raise DataPlaneError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                "RequestEntityTooLargeException",
                f"the payload is {len(body)} bytes; the limit is {MAX_PAYLOAD_BYTES}",
            )
        try:
            validate_topic(topic)
        except InvalidTopicError as exc:
            raise _bad_request(str(exc)) from exc
        self.server.backend.publish(topic, body, int(qos_text), retain)
        self._answer(HTTPStatus.OK, {})

    def _get_retained(self, topic: str) -> None:
        message = next((m for m in self.server.backend.retained_messages() if m.topic == topic), None)
        if message is None:
            raise DataPlaneError(
                HTTPStatus.NOT_FOUND, "ResourceNotFoundException", f"no retained message on {topic!r}"
            )
        self._answer(
            HTTPStatus.OK,
            {
                "topic": message.topic,
                "payload": base64.b64encode(message.payload).decode(),
                "qos": message.qos,
                "lastModifiedTime": message.last_modified_ms,
            },
        )

    def _list_retained(self, query: dict[str, str]) -> None:
        try:
            max_results = int(query.get("maxResults", "200"))
            start = int(query.get("nextToken", "0") or 0)
        except ValueError as exc:
            raise _bad_request(f"bad paging parameters: {exc}") from exc
        messages = self.server.backend.retained_messages()
        page = messages[start : start + max_results]
        answer: dict[str, Any] = {
            "retainedTopics": [
                {
                    "topic": m.topic,
                    "payloadSize": len(m.payload),
                    "qos": m.qos,
                    "lastModifiedTime": m.last_modified_ms,
                }
                for m in page
            ]
        }
        if start + max_results < len(messages):
            answer["nextToken"] = str(start + max_results)
        self._answer(HTTPStatus.OK, answer)

    def _answer(self, status: HTTPStatus, document: dict[str, Any], error_code: str | None = None) -> None:
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if error_code:
            self.send_header("x-amzn-ErrorType", error_code)
        self.end_headers()
        self.wfile.write(body)


class DataPlaneServer:
    """The data-plane endpoint on ``host:port`` (0 picks a free port), served on a background thread."""

    def __init__(self, backend: DataPlaneBackend, host: str = "127.0.0.1", port: int = 0) -> None:
        self._backend = backend
        self.host = host
        self._requested_port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Bind and serve; raise ``OSError`` when the port is taken."""
        server = _Server((self.host, self._requested_port), _Handler)
        server.backend = self._backend
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="iot-data-plane", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and release the port."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(5.0)

    @property
    def port(self) -> int:
        """The bound port."""
        if self._server is None:
            raise RuntimeError("the data plane is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """``http://host:port``: the ``endpoint_url`` for boto3's ``iot-data`` client."""
        return f"http://{self.host}:{self.port}"
