"""CORS for HTTP APIs, from their ``CorsConfiguration``.

With CORS configured, an HTTP API answers preflight requests itself (whatever the routes), and
puts its own ``Access-Control-*`` headers on every response in place of the integration's.
REST APIs have no such switch: SAM's ``Cors`` becomes OPTIONS methods with mock integrations,
which the router serves like any other method.
"""

from __future__ import annotations

from localcloud.apigateway.messages import GatewayRequest, GatewayResponse
from localcloud.apigateway.model import CorsRule

_WILDCARD = "*"


class CorsPolicy:
    """Applies one :class:`~localcloud.apigateway.model.CorsRule`."""

    def __init__(self, rule: CorsRule) -> None:
        self.rule = rule

    @staticmethod
    def is_preflight(request: GatewayRequest) -> bool:
        """An OPTIONS request with ``Origin`` and ``Access-Control-Request-Method``."""
        return (
            request.method == "OPTIONS"
            and request.header("Origin") is not None
            and request.header("Access-Control-Request-Method") is not None
        )

    def _allowed_origin(self, origin: str | None) -> str | None:
        if origin is None:
            return None
        origins = self.rule.allow_origins
        if _WILDCARD in origins:
            # Credentials cannot be combined with "*": the origin is echoed instead.
            return origin if self.rule.allow_credentials else _WILDCARD
        return origin if origin.lower() in {o.lower() for o in origins} else None

    def preflight(self, request: GatewayRequest) -> GatewayResponse:
        """The 204 answer to a preflight; without CORS headers when the request is not allowed."""
        response = GatewayResponse(status=204)
        origin = self._allowed_origin(request.header("Origin"))
        method = (request.header("Access-Control-Request-Method") or "").upper()
        requested = [
            h.strip().lower()
            for h in (request.header("Access-Control-Request-Headers") or "").split(",")
            if h.strip()
        ]
        methods_ok = _WILDCARD in self.rule.allow_methods or method in self.rule.allow_methods
        headers_ok = _WILDCARD in self.rule.allow_headers or all(
            h in self.rule.allow_headers for h in requested
        )
        if origin is None or not methods_ok or not headers_ok:
            return response
        response.headers.append(("Access-Control-Allow-Origin", origin))
        response.headers.append(("Access-Control-Allow-Methods", ",".join(self.rule.allow_methods)))
        if self.rule.allow_headers:
            response.headers.append(("Access-Control-Allow-Headers", ",".join(self.rule.allow_headers)))
        if self.rule.max_age is not None:
            response.headers.append(("Access-Control-Max-Age", str(self.rule.max_age)))
        if self.rule.allow_credentials:
            response.headers.append(("Access-Control-Allow-Credentials", "true"))
        return response

    def decorate(self, request: GatewayRequest, response: GatewayResponse) -> GatewayResponse:
        """Replace the integration's CORS headers with the configured ones."""
        response.headers = [
            (n, v) for n, v in response.headers if not n.lower().startswith("access-control-")
        ]
        origin = self._allowed_origin(request.header("Origin"))
        if origin is None:
            return response
        response.headers.append(("Access-Control-Allow-Origin", origin))
        if self.rule.expose_headers:
            response.headers.append(("Access-Control-Expose-Headers", ",".join(self.rule.expose_headers)))
        if self.rule.allow_credentials:
            response.headers.append(("Access-Control-Allow-Credentials", "true"))
        return response
