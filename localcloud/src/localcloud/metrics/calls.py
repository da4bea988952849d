"""AWS JSON-protocol calls as WSGI middlewares see them: parsed once, answered or passed on.

Kinesis, DynamoDB and SQS speak JSON over HTTP (``X-Amz-Target: <prefix>.<Operation>``). Several
middlewares look at the same call (metrics outside, shard limits inside), so the parsed request and
response are kept in the WSGI environ and each body is decoded at most once per call.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from localcloud.server import WsgiApp, aws_service_of

_REQUEST_KEY = "localcloud.json_request"
_RESPONSE_KEY = "localcloud.json_response"
_REGION = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/")

StartResponse = Callable[..., Any]


@dataclass
class JsonCall:
    """One AWS JSON-protocol request: service, operation, region and the decoded body."""

    service: str
    operation: str
    region: str
    body: bytes
    request: dict[str, Any]


@dataclass
class JsonAnswer:
    """A buffered response; ``json()`` decodes the body once (shared through the environ)."""

    status: str
    headers: list[tuple[str, str]]
    body: bytes
    _parsed: Any = field(default=None, repr=False)

    @property
    def status_code(self) -> int:
        """The HTTP status as a number."""
        return int(self.status.split(" ", 1)[0])

    def json(self) -> dict[str, Any]:
        """The body as a JSON object (``{}`` when it is not one)."""
        if self._parsed is None:
            try:
                parsed = json.loads(self.body) if self.body else {}
            except ValueError:
                parsed = {}
            self._parsed = parsed if isinstance(parsed, dict) else {}
        result: dict[str, Any] = self._parsed
        return result

    def error_code(self) -> str:
        """The AWS error code of a failed call (``__type`` without its namespace), or ``""``."""
        if self.status_code < 400:
            return ""
        code = str(self.json().get("__type", ""))
        return code.rsplit("#", 1)[-1]


def region_of(environ: dict[str, Any], default: str) -> str:
    """The region a SigV4-signed request was signed for."""
    match = _REGION.search(environ.get("HTTP_AUTHORIZATION", ""))
    return match.group(1) if match else default


def json_call(environ: dict[str, Any], default_region: str) -> JsonCall | None:
    """The JSON-protocol call in ``environ`` (cached in it), or None for any other request.

    Reading the body consumes ``wsgi.input``; it is put back so the inner app reads it unchanged.
    """
    cached = environ.get(_REQUEST_KEY)
    if cached is not None:
        return cached if isinstance(cached, JsonCall) else None
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    service = aws_service_of(environ)
    if not target or service is None or "json" not in environ.get("CONTENT_TYPE", ""):
        environ[_REQUEST_KEY] = False
        return None
    body = _read_body(environ)
    try:
        request = json.loads(body) if body else {}
    except ValueError:
        request = {}
    call = JsonCall(
        service=service,
        operation=target.rsplit(".", 1)[-1],
        region=region_of(environ, "us-east-1"),
        body=body,
        request=request if isinstance(request, dict) else {},
    )
    environ[_REQUEST_KEY] = call
    return call


def replace_request(environ: dict[str, Any], call: JsonCall, request: dict[str, Any]) -> None:
    """Give the inner app a different JSON body (and keep the cached call in step)."""
    body = json.dumps(request, separators=(",", ":")).encode()
    _set_body(environ, body)
    environ[_REQUEST_KEY] = JsonCall(call.service, call.operation, call.region, body, request)


def _read_body(environ: dict[str, Any]) -> bytes:
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    try:
        length = int(environ.get("CONTENT_LENGTH") or -1)
    except ValueError:
        length = -1
    body: bytes = stream.read(length) if length >= 0 else stream.read()
    _set_body(environ, body)
    return body


def _set_body(environ: dict[str, Any], body: bytes) -> None:
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    # The body is now a plain buffer: no chunked decoding left for the inner app to do.
    environ.pop("HTTP_TRANSFER_ENCODING", None)
    environ["wsgi.input_terminated"] = False


def call_app(app: WsgiApp, environ: dict[str, Any]) -> JsonAnswer:
    """Run the inner app and buffer its whole response."""
    captured: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        captured["status"] = status
        captured["headers"] = list(headers)
        return lambda _data: None

    chunks = app(environ, start_response)
    try:
        body = b"".join(chunks)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    shared = environ.get(_RESPONSE_KEY)
    answer = JsonAnswer(
        captured.get("status", "500 Internal Server Error"), captured.get("headers", []), body
    )
    if isinstance(shared, JsonAnswer) and shared.body == body:
        answer._parsed = shared._parsed  # an inner middleware decoded this very body already
    return answer


def send(environ: dict[str, Any], start_response: StartResponse, answer: JsonAnswer) -> Iterable[bytes]:
    """Pass ``answer`` on to the outer caller (and share it with outer middlewares)."""
    environ[_RESPONSE_KEY] = answer
    headers = [(k, v) for k, v in answer.headers if k.lower() != "content-length"]
    headers.append(("Content-Length", str(len(answer.body))))
    start_response(answer.status, headers)
    return [answer.body]


def json_answer(status: str, payload: dict[str, Any], content_type: str) -> JsonAnswer:
    """A response made up by a middleware (an error or a merged result)."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    answer = JsonAnswer(status, [("Content-Type", content_type)], body)
    answer._parsed = payload
    return answer


def aws_error(code: str, message: str, content_type: str, status: str = "400 Bad Request") -> JsonAnswer:
    """An AWS JSON-protocol error, shaped the way botocore parses it (``__type`` and ``message``)."""
    return json_answer(status, {"__type": code, "message": message}, content_type)


def decoded_length(b64: str) -> int:
    """Bytes a base64 string decodes to, without decoding it."""
    n = len(b64)
    if n == 0:
        return 0
    padding = 2 if b64.endswith("==") else 1 if b64.endswith("=") else 0
    return n * 3 // 4 - padding
