"""The IoT data-plane HTTP endpoint: what boto3's ``iot-data`` client calls.

- ``Publish``: ``POST /topics/{topic}?qos=0|1&retain=true|false`` with the payload as the body.
- ``GetRetainedMessage``: ``GET /retainedMessage/{topic}``.
- ``ListRetainedMessages``: ``GET /retainedMessage?maxResults=&nextToken=``.

Requests are not authenticated (any SigV4 signature, or none, is accepted). Errors are answered in
AWS's REST-JSON shape (``x-amzn-ErrorType`` header and ``{"message": ...}``) so SDKs raise the
right exception classes. Device shadows are not served. Served by localcloud's
:class:`~localcloud.httpserver.HttpServer` (HTTP/1.1 and HTTP/2 cleartext).
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterable
from http import HTTPStatus
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from localcloud.httpserver import HttpServer, StartResponse, request_target, respond
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


class _DataPlane:
    """The data-plane operations as a WSGI app over a :class:`DataPlaneBackend`."""

    def __init__(self, backend: DataPlaneBackend) -> None:
        self.backend = backend

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        body = environ["wsgi.input"].read()
        url = urlsplit(request_target(environ))
        query = {key: values[-1] for key, values in parse_qs(url.query).items()}
        path = url.path
        # The API model spells it /retainedMessage; answer either case.
        lowered = path.lower()
        try:
            if method == "POST" and path.startswith("/topics/"):
                status, document = self._publish(unquote(path[len("/topics/") :]), query, body)
            elif method == "GET" and lowered.startswith("/retainedmessage/"):
                status, document = self._get_retained(unquote(path[len("/retainedmessage/") :]))
            elif method == "GET" and lowered.rstrip("/") == "/retainedmessage":
                status, document = self._list_retained(query)
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
            return _answer(start_response, exc.status, {"message": str(exc)}, error_code=exc.code)
        except Exception as exc:
            LOG.exception("data-plane request %s %s failed", method, path)
            return _answer(
                start_response,
                HTTPStatus.INTERNAL_SERVER_ERROR,
                {"message": str(exc)},
                error_code="InternalFailureException",
            )
        return _answer(start_response, status, document)

    def _publish(self, topic: str, query: dict[str, str], body: bytes) -> tuple[HTTPStatus, dict[str, Any]]:
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
        self.backend.publish(topic, body, int(qos_text), retain)
        return HTTPStatus.OK, {}

    def _get_retained(self, topic: str) -> tuple[HTTPStatus, dict[str, Any]]:
        message = next((m for m in self.backend.retained_messages() if m.topic == topic), None)
        if message is None:
            raise DataPlaneError(
                HTTPStatus.NOT_FOUND, "ResourceNotFoundException", f"no retained message on {topic!r}"
            )
        return HTTPStatus.OK, {
            "topic": message.topic,
            "payload": base64.b64encode(message.payload).decode(),
            "qos": message.qos,
            "lastModifiedTime": message.last_modified_ms,
        }

    def _list_retained(self, query: dict[str, str]) -> tuple[HTTPStatus, dict[str, Any]]:
        try:
            max_results = int(query.get("maxResults", "200"))
            start = int(query.get("nextToken", "0") or 0)
        except ValueError as exc:
            raise _bad_request(f"bad paging parameters: {exc}") from exc
        messages = self.backend.retained_messages()
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
        return HTTPStatus.OK, answer


def _answer(
    start_response: StartResponse, status: HTTPStatus, document: dict[str, Any], error_code: str | None = None
) -> list[bytes]:
    headers = [("Content-Type", "application/json")]
    if error_code:
        headers.append(("x-amzn-ErrorType", error_code))
    return respond(start_response, status, headers, json.dumps(document).encode())


class DataPlaneServer:
    """The data-plane endpoint on ``host:port`` (0 picks a free port), served on a background thread."""

    def __init__(self, backend: DataPlaneBackend, host: str = "127.0.0.1", port: int = 0) -> None:
        self._backend = backend
        self.host = host
        self._requested_port = port
        self._server: HttpServer | None = None

    def start(self) -> None:
        """Bind and serve; raise ``OSError`` when the port is taken."""
        server = HttpServer(
            _DataPlane(self._backend), host=self.host, port=self._requested_port, name="iot-data-plane"
        )
        server.start()
        self._server = server

    def stop(self) -> None:
        """Stop serving and release the port."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()

    @property
    def port(self) -> int:
        """The bound port."""
        if self._server is None:
            raise RuntimeError("the data plane is not running")
        return self._server.port

    @property
    def url(self) -> str:
        """``http://host:port``: the ``endpoint_url`` for boto3's ``iot-data`` client."""
        return f"http://{self.host}:{self.port}"
