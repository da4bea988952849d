"""What localcloud knows about one deployed API: its stages, routes, integrations, CORS and limits.

These are plain configuration objects built once per deploy by :mod:`localcloud.apigateway.discovery`;
the request path (routing, events, responses) only reads them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

# API Gateway's fixed integration timeouts: 29 s for REST APIs, 30 s for HTTP APIs.
REST_INTEGRATION_TIMEOUT_S = 29.0
HTTP_INTEGRATION_TIMEOUT_S = 30.0
# The stage an HTTP API serves at the root of its host.
DEFAULT_STAGE = "$default"
# The route an HTTP API falls back to when nothing else matches.
DEFAULT_ROUTE = "$default"
ANY_METHOD = "ANY"


class ApiKind(StrEnum):
    """Which API Gateway product an API belongs to."""

    REST = "REST"  # AWS::ApiGateway::RestApi (v1)
    HTTP = "HTTP"  # AWS::ApiGatewayV2::Api with ProtocolType HTTP


@dataclass(frozen=True)
class LambdaProxyIntegration:
    """An ``aws_proxy`` integration with a Lambda function."""

    # A function name or ARN, as the Invoker accepts it.
    function: str
    payload_format: str = "1.0"
    timeout_s: float = REST_INTEGRATION_TIMEOUT_S


@dataclass(frozen=True)
class MockIntegration:
    """A ``mock`` integration: a fixed response (SAM's CORS preflight methods use these)."""

    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    body: str = ""


@dataclass(frozen=True)
class UnsupportedIntegration:
    """An integration localcloud cannot run (HTTP proxies, AWS service integrations, ...)."""

    description: str


@dataclass(frozen=True)
class IntegrationResponse:
    """One of an ``aws`` integration's responses, chosen by ``selectionPattern`` on the status code."""

    status: int
    pattern: str | None = None  # a regular expression on the integration's status; None: the default
    # method.response.header.<name> -> integration.response.header.<name> | 'static'
    parameters: tuple[tuple[str, str], ...] = ()
    templates: tuple[tuple[str, str], ...] = ()  # content type -> VTL
    content_handling: str | None = None  # CONVERT_TO_TEXT / CONVERT_TO_BINARY / None (passthrough)


@dataclass(frozen=True)
class AwsIntegration:
    """An ``aws`` integration: API Gateway calls an AWS service API itself (no function)."""

    # arn:aws:apigateway:<region>:<service>:path/<path> or ...:<service>:action/<Action>
    uri: str
    http_method: str
    credentials: str | None = None  # the role API Gateway assumes for the call
    # integration.request.<location>.<name> -> method.request.<location>.<name> | 'static' | context.x
    request_parameters: tuple[tuple[str, str], ...] = ()
    request_templates: tuple[tuple[str, str], ...] = ()  # content type -> VTL
    passthrough_behavior: str = "WHEN_NO_MATCH"
    content_handling: str | None = None
    responses: tuple[IntegrationResponse, ...] = ()
    timeout_s: float = REST_INTEGRATION_TIMEOUT_S
    # Request validation (validateRequestParameters): "header.Content-Type", "querystring.limit", ...
    required_parameters: tuple[str, ...] = ()


Integration = LambdaProxyIntegration | MockIntegration | AwsIntegration | UnsupportedIntegration


@dataclass(frozen=True)
class Route:
    """One method on one resource path, e.g. ``GET /races/{raceId}``; ``$default`` for the catch-all."""

    method: str  # upper-case, or "ANY"
    path: str  # the resource path template, e.g. "/races/{raceId}" or "/{proxy+}", or "$default"
    integration: Integration

    @property
    def key(self) -> str:
        """The HTTP API route key: ``"GET /races/{raceId}"`` or ``"$default"``."""
        if self.path == DEFAULT_ROUTE:
            return DEFAULT_ROUTE
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class ThrottleLimit:
    """A token bucket's settings: steady requests per second and burst capacity."""

    rate: float
    burst: int


@dataclass(frozen=True)
class Stage:
    """A deployed stage: its variables and throttling settings."""

    name: str
    variables: dict[str, str] = field(default_factory=dict)
    # Stage-wide limit (REST ``/*`` ``*`` method settings, HTTP API DefaultRouteSettings).
    default_throttle: ThrottleLimit | None = None
    # Per route: REST keys are "GET /races/{raceId}"; HTTP API keys are route keys.
    route_throttles: dict[str, ThrottleLimit] = field(default_factory=dict)


@dataclass(frozen=True)
class CorsRule:
    """An HTTP API's ``CorsConfiguration`` (REST APIs get CORS from their OPTIONS mock methods)."""

    allow_origins: tuple[str, ...] = ()
    allow_methods: tuple[str, ...] = ()
    allow_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age: int | None = None
    allow_credentials: bool = False


@dataclass(frozen=True)
class Api:
    """One deployed API, ready to serve."""

    api_id: str  # the stand-in id the stack's Ref / outputs carry
    logical_id: str
    stack_name: str
    kind: ApiKind
    title: str
    stages: tuple[Stage, ...]
    routes: tuple[Route, ...]
    cors: CorsRule | None = None
    # REST ``x-amazon-apigateway-binary-media-types``: request bodies of these types are base64.
    binary_media_types: tuple[str, ...] = ()
    # The stage a base URL points at (the template's own stage, not SAM's extra "Stage" stage).
    primary_stage: str | None = None

    def stage(self, name: str) -> Stage | None:
        """The stage called ``name``, if the API has one."""
        return next((stage for stage in self.stages if stage.name == name), None)
