"""The Lambda proxy events API Gateway sends: payload format 1.0 (REST APIs) and 2.0 (HTTP APIs)."""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from localcloud.apigateway.messages import GatewayRequest
from localcloud.apigateway.model import Api, Route, Stage

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# Content types an HTTP API passes as text; every other body is base64-encoded.
_TEXT_TYPES = (
    "text/",
    "application/json",
    "application/xml",
    "application/javascript",
    "application/x-www-form-urlencoded",
    "application/graphql",
    "application/x-yaml",
)
_TEXT_SUFFIXES = ("+json", "+xml")


@dataclass(frozen=True)
class RequestFacts:
    """Everything an event needs besides the request itself: where it was routed, and when."""

    api: Api
    stage: Stage
    route: Route
    path_parameters: dict[str, str]
    # The path after the stage, e.g. "/races/42" (raw, as sent).
    resource_path: str
    request_id: str
    received: datetime  # timezone-aware UTC
    account_id: str


def clf_time(moment: datetime) -> str:
    """API Gateway's ``requestTime`` / ``time``: ``21/Nov/2026:17:00:29 +0000`` (locale-free)."""
    return f"{moment.day:02d}/{_MONTHS[moment.month - 1]}/{moment.year}:{moment:%H:%M:%S} +0000"


def epoch_ms(moment: datetime) -> int:
    """Milliseconds since the epoch."""
    return int(moment.timestamp() * 1000)


def domain_prefix(host: str, api_id: str) -> str:
    """The first label of the host when it is the API's own host name, else the API id."""
    label = host.split(":", 1)[0].split(".", 1)[0]
    return label if label == api_id else api_id


def _content_type(request: GatewayRequest) -> str:
    return (request.header("Content-Type") or "").split(";", 1)[0].strip().lower()


def _decoded_text(body: bytes) -> str | None:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _body_field(body: bytes, as_binary: bool) -> tuple[str, bool]:
    text = None if as_binary else _decoded_text(body)
    if text is None:
        return base64.b64encode(body).decode("ascii"), True
    return text, False


def _matches_media_type(content_type: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(content_type, pattern.lower()) for pattern in patterns)


class RestEventBuilder:
    """Payload format 1.0, as REST APIs (and HTTP APIs configured for 1.0) send it."""

    def build(self, request: GatewayRequest, facts: RequestFacts) -> dict[str, Any]:
        """The event for one request."""
        headers: dict[str, str] = {}
        multi_headers: dict[str, list[str]] = {}
        for name, value in request.headers:
            headers[name] = value  # the last repeat wins in the single-value map
            multi_headers.setdefault(name, []).append(value)
        query: dict[str, str] = {}
        multi_query: dict[str, list[str]] = {}
        for name, value in request.query_pairs():
            query[name] = value
            multi_query.setdefault(name, []).append(value)
        body: str | None = None
        is_base64 = False
        if request.body:
            binary = bool(facts.api.binary_media_types) and _matches_media_type(
                _content_type(request), facts.api.binary_media_types
            )
            body, is_base64 = _body_field(request.body, binary)
        stage_path = facts.resource_path if facts.resource_path.startswith("/") else "/" + facts.resource_path
        user_agent = request.header("User-Agent")
        return {
            "resource": facts.route.path,
            "path": stage_path,
            "httpMethod": request.method,
            "headers": headers,
            "multiValueHeaders": multi_headers,
            "queryStringParameters": query or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": facts.path_parameters or None,
            "stageVariables": facts.stage.variables or None,
            "requestContext": {
                "resourceId": _resource_id(facts.route.path),
                "resourcePath": facts.route.path,
                "httpMethod": request.method,
                "extendedRequestId": _extended_request_id(),
                "requestTime": clf_time(facts.received),
                "path": f"/{facts.stage.name}{stage_path}",
                "accountId": facts.account_id,
                "protocol": request.protocol,
                "stage": facts.stage.name,
                "domainPrefix": domain_prefix(request.host, facts.api.api_id),
                "requestTimeEpoch": epoch_ms(facts.received),
                "requestId": facts.request_id,
                "identity": {
                    "cognitoIdentityPoolId": None,
                    "accountId": None,
                    "cognitoIdentityId": None,
                    "caller": None,
                    "sourceIp": request.source_ip,
                    "principalOrgId": None,
                    "accessKey": None,
                    "cognitoAuthenticationType": None,
                    "cognitoAuthenticationProvider": None,
                    "userArn": None,
                    "userAgent": user_agent,
                    "user": None,
                },
                "domainName": request.host,
                "apiId": facts.api.api_id,
            },
            "body": body,
            "isBase64Encoded": is_base64,
        }


class HttpEventBuilder:
    """Payload format 2.0, the HTTP API default."""

    def build(self, request: GatewayRequest, facts: RequestFacts) -> dict[str, Any]:
        """The event for one request."""
        headers: dict[str, str] = {}
        cookies: list[str] = []
        for name, value in request.headers:
            lowered = name.lower()
            if lowered == "cookie":
                # Cookies travel on their own; the header is left out.
                cookies.extend(part.strip() for part in value.split(";") if part.strip())
                continue
            headers[lowered] = f"{headers[lowered]},{value}" if lowered in headers else value
        query: dict[str, str] = {}
        for name, value in request.query_pairs():
            query[name] = f"{query[name]},{value}" if name in query else value
        event: dict[str, Any] = {
            "version": "2.0",
            "routeKey": facts.route.key,
            "rawPath": request.path,
            "rawQueryString": request.query,
        }
        if cookies:
            event["cookies"] = cookies
        event["headers"] = headers
        if query:
            event["queryStringParameters"] = query
        if facts.path_parameters:
            event["pathParameters"] = facts.path_parameters
        if facts.stage.variables:
            event["stageVariables"] = facts.stage.variables
        event["requestContext"] = {
            "accountId": facts.account_id,
            "apiId": facts.api.api_id,
            "domainName": request.host,
            "domainPrefix": domain_prefix(request.host, facts.api.api_id),
            "http": {
                "method": request.method,
                "path": request.path,
                "protocol": request.protocol,
                "sourceIp": request.source_ip,
                "userAgent": request.header("User-Agent") or "",
            },
            "requestId": facts.request_id,
            "routeKey": facts.route.key,
            "stage": facts.stage.name,
            "time": clf_time(facts.received),
            "timeEpoch": epoch_ms(facts.received),
        }
        if request.body:
            content_type = _content_type(request)
            textual = (
                not content_type
                or content_type.startswith(_TEXT_TYPES)
                or content_type.endswith(_TEXT_SUFFIXES)
            )
            event["body"], event["isBase64Encoded"] = _body_field(request.body, not textual)
        else:
            event["isBase64Encoded"] = False
        return event


def _resource_id(path: str) -> str:
    # A stable, id-shaped value per resource, as API Gateway's resource ids are.
    return hashlib.sha1(path.encode(), usedforsecurity=False).hexdigest()[:6]


# Unique, not secret: a generator seeded once costs no system call per request (secrets does).
_IDS = random.Random()


def _extended_request_id() -> str:
    return base64.b64encode(_IDS.getrandbits(48).to_bytes(6, "big")).decode("ascii").rstrip("=") + "="
