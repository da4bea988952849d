"""A local API Gateway front door: the REST and HTTP APIs of deployed SAM templates over HTTP.

``ApiGatewayServer(invoker).start()`` then ``.register(deploy_result)`` serves every API a stack
declares at ``http://127.0.0.1:<port>/restapis/<apiId>/<stage>/...``, sending each request to its
Lambda function as API Gateway's proxy event (payload format 1.0 or 2.0). See README.md here.
"""

from __future__ import annotations

from localcloud.apigateway.discovery import discover_apis
from localcloud.apigateway.gateway import ApiGateway
from localcloud.apigateway.messages import GatewayRequest, GatewayResponse
from localcloud.apigateway.model import Api, ApiKind
from localcloud.apigateway.server import ApiGatewayServer, ApiInfo

__all__ = [
    "Api",
    "ApiGateway",
    "ApiGatewayServer",
    "ApiInfo",
    "ApiKind",
    "GatewayRequest",
    "GatewayResponse",
    "discover_apis",
]
