"""Turning a function's result into an HTTP response, and API Gateway's own error responses.

Errors map to HTTP here and nowhere else.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from enum import Enum
from typing import Any

from localcloud.apigateway.messages import GatewayResponse
from localcloud.apigateway.model import ApiKind

_PROXY_RESPONSE_KEYS = {"statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded"}


class MalformedResponseError(ValueError):
    """The function returned something API Gateway cannot turn into an HTTP response."""


class GatewayError(Enum):
    """Failures API Gateway answers itself, without (or instead of) the integration's response."""

    NO_ROUTE = "no route"
    INTEGRATION_FAILED = "integration failed"  # function error or malformed response
    TIMEOUT = "timeout"
    THROTTLED = "throttled"
    INTERNAL = "internal"  # an integration localcloud cannot run, an unknown function


def error_response(kind: ApiKind, error: GatewayError) -> GatewayResponse:
    """API Gateway's answer for ``error`` on an API of ``kind``.

    REST APIs answer a missing route with 403 and failed integrations with 502; HTTP APIs answer
    404 and 500 (with their own capitalisation), as AWS does.
    """
    if error is GatewayError.NO_ROUTE:
        if kind is ApiKind.REST:
            return GatewayResponse.json_message(
                403, "Missing Authentication Token", error_type="MissingAuthenticationTokenException"
            )
        return GatewayResponse.json_message(404, "Not Found")
    if error is GatewayError.TIMEOUT:
        return GatewayResponse.json_message(504, "Endpoint request timed out", spaced=True)
    if error is GatewayError.THROTTLED:
        return GatewayResponse.json_message(429, "Too Many Requests", error_type="ThrottlingException")
    if kind is ApiKind.HTTP:
        return GatewayResponse.json_message(500, "Internal Server Error")
    status = 502 if error is GatewayError.INTEGRATION_FAILED else 500
    return GatewayResponse.json_message(status, "Internal server error", spaced=True)


def _status(value: Any) -> int:
    if isinstance(value, bool):
        raise MalformedResponseError("statusCode is a boolean")
    if isinstance(value, int):
        status = value
    elif isinstance(value, str) and value.strip().isdigit():
        status = int(value)
    else:
        raise MalformedResponseError(f"statusCode {value!r} is not a number")
    if not 100 <= status <= 599:
        raise MalformedResponseError(f"statusCode {status} is out of range")
    return status


def _header_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise MalformedResponseError(f"header value {value!r} is not a string")


def _body(payload: Mapping[str, Any]) -> bytes:
    body = payload.get("body")
    if body is None:
        return b""
    if not isinstance(body, str):
        raise MalformedResponseError("body is not a string")
    encoded = payload.get("isBase64Encoded", False)
    if not isinstance(encoded, bool):
        raise MalformedResponseError("isBase64Encoded is not a boolean")
    if encoded:
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise MalformedResponseError("body is not valid base64") from exc
    return body.encode("utf-8")


def _single_headers(value: Any) -> list[tuple[str, str]]:
    if value is None:
        return []
    if not isinstance(value, dict):
        raise MalformedResponseError("headers is not an object")
    return [(str(name), _header_value(item)) for name, item in value.items()]


class RestResponseMapper:
    """Payload format 1.0 responses: ``{statusCode, headers, multiValueHeaders, body, isBase64Encoded}``.

    As on AWS, anything else at the top level, a non-string body or a missing object is malformed.
    """

    def map(self, payload: Any) -> GatewayResponse:
        """The HTTP response for ``payload``; raises :class:`MalformedResponseError`."""
        if not isinstance(payload, dict):
            raise MalformedResponseError(f"the response is a {type(payload).__name__}, not an object")
        unexpected = set(payload) - _PROXY_RESPONSE_KEYS
        if unexpected:
            raise MalformedResponseError(f"unexpected keys {sorted(unexpected)}")
        status = _status(payload.get("statusCode", 200))
        headers: list[tuple[str, str]] = []
        multi = payload.get("multiValueHeaders")
        if multi is not None:
            if not isinstance(multi, dict):
                raise MalformedResponseError("multiValueHeaders is not an object")
            for name, values in multi.items():
                if not isinstance(values, list):
                    raise MalformedResponseError(f"multiValueHeaders[{name!r}] is not a list")
                headers.extend((str(name), _header_value(item)) for item in values)
        # A name in both maps keeps the multi-value entries and adds the single value if new.
        for name, value in _single_headers(payload.get("headers")):
            if (name.lower(), value) not in {(n.lower(), v) for n, v in headers}:
                headers.append((name, value))
        return GatewayResponse(status=status, headers=headers, body=_body(payload))


class HttpResponseMapper:
    """Payload format 2.0 responses.

    An object with ``statusCode`` is read as ``{statusCode, headers, cookies, body, isBase64Encoded}``;
    anything else (a string, a list, an object without ``statusCode``, null) becomes a 200
    ``application/json`` response whose body is the function's JSON output.
    """

    def map(self, payload: Any) -> GatewayResponse:
        """The HTTP response for ``payload``; raises :class:`MalformedResponseError`."""
        if not isinstance(payload, dict) or "statusCode" not in payload:
            return GatewayResponse(
                status=200,
                headers=[("Content-Type", "application/json")],
                body=json.dumps(payload).encode("utf-8"),
            )
        headers = _single_headers(payload.get("headers"))
        cookies = payload.get("cookies") or []
        if not isinstance(cookies, list):
            raise MalformedResponseError("cookies is not a list")
        headers.extend(("Set-Cookie", _header_value(cookie)) for cookie in cookies)
        return GatewayResponse(status=_status(payload["statusCode"]), headers=headers, body=_body(payload))
