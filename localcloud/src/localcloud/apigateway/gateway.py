"""The front door without the sockets: stage selection, routing, CORS, throttling, invocation.

:class:`ApiGateway` takes a :class:`~localcloud.apigateway.messages.GatewayRequest` for one API and
returns a :class:`~localcloud.apigateway.messages.GatewayResponse`; the HTTP server in
:mod:`localcloud.apigateway.server` only parses and writes HTTP around it.
"""

from __future__ import annotations

import logging
import random
import threading
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeoutError
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from localcloud.apigateway.cors import CorsPolicy
from localcloud.apigateway.events import HttpEventBuilder, RequestFacts, RestEventBuilder
from localcloud.apigateway.messages import GatewayRequest, GatewayResponse
from localcloud.apigateway.model import (
    DEFAULT_STAGE,
    Api,
    ApiKind,
    AwsIntegration,
    LambdaProxyIntegration,
    MockIntegration,
    Stage,
)
from localcloud.apigateway.responses import (
    GatewayError,
    HttpResponseMapper,
    MalformedResponseError,
    RestResponseMapper,
    error_response,
)
from localcloud.apigateway.routing import RouteMatch, RouteTable
from localcloud.apigateway.service import AwsServiceIntegration
from localcloud.apigateway.throttling import StageThrottles
from localcloud.invocation import FunctionNotFoundError, InvocationResult, Invoker, TooManyRequestsError

LOG = logging.getLogger(__name__)
# Request ids need to be unique, not secret: a generator seeded once costs no system call per id
# (uuid4 reads os.urandom each time, which under load also means waiting for the interpreter lock).
_IDS = random.Random()


def _request_id() -> str:
    """A random version-4 UUID, as AWS's request ids are."""
    return str(uuid.UUID(int=_IDS.getrandbits(128), version=4))


# Invocations run on their own threads so that the integration timeout can be enforced; this many
# may run at once (the runtime's own concurrency limits apply inside).
MAX_CONCURRENT_INVOCATIONS = 256

_REST_EVENTS = RestEventBuilder()
_HTTP_EVENTS = HttpEventBuilder()
_REST_RESPONSES = RestResponseMapper()
_HTTP_RESPONSES = HttpResponseMapper()


@dataclass
class _ServedApi:
    api: Api
    routes: RouteTable
    cors: CorsPolicy | None
    throttles: StageThrottles


class ApiGateway:
    """Serves the deployed APIs: one call per request, safe to call from many threads."""

    def __init__(
        self,
        invoker: Invoker,
        account_id: str,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        aws: AwsServiceIntegration | None = None,
    ) -> None:
        self._invoker = invoker
        # Runs ``aws`` (service) integrations; without it they answer 500 like other unsupported ones.
        self._aws = aws
        self._account_id = account_id
        self._now = now
        self._apis: dict[str, _ServedApi] = {}
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(MAX_CONCURRENT_INVOCATIONS, thread_name_prefix="apigw-invoke")

    # -- configuration ---------------------------------------------------------------------------
    def replace_stack(self, stack_name: str, apis: Iterable[Api]) -> None:
        """Serve ``apis`` in place of whatever ``stack_name`` declared before."""
        served = {
            api.api_id: _ServedApi(
                api=api,
                routes=RouteTable(api.routes, api.kind),
                cors=CorsPolicy(api.cors) if api.cors is not None else None,
                throttles=StageThrottles(),
            )
            for api in apis
        }
        with self._lock:
            kept = {k: v for k, v in self._apis.items() if v.api.stack_name != stack_name}
            kept.update(served)
            self._apis = kept

    def api(self, api_id: str) -> Api | None:
        """The API served under ``api_id``."""
        served = self._apis.get(api_id)
        return served.api if served is not None else None

    @property
    def apis(self) -> list[Api]:
        """Every API being served."""
        return [served.api for served in self._apis.values()]

    def close(self) -> None:
        """Stop accepting invocations; running ones finish on their own threads."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    # -- requests --------------------------------------------------------------------------------
    def handle(self, api_id: str, request: GatewayRequest) -> GatewayResponse:
        """Answer one request to the API ``api_id``."""
        request_id = _request_id()
        served = self._apis.get(api_id)
        if served is None:
            response = GatewayResponse.json_message(404, "Not Found")
        else:
            response = self._handle(served, request, request_id)
        if served is not None and served.api.kind is ApiKind.HTTP:
            response.headers.append(("Apigw-Requestid", request_id))
        else:
            response.headers.append(("x-amzn-RequestId", request_id))
            response.set_default_header("Content-Type", "application/json")
        return response

    def _handle(self, served: _ServedApi, request: GatewayRequest, request_id: str) -> GatewayResponse:
        api = served.api
        selected = _select_stage(api, request.path)
        if selected is None:
            return error_response(api.kind, GatewayError.NO_ROUTE)
        stage, resource_path = selected
        if served.cors is not None and served.cors.is_preflight(request):
            return served.cors.preflight(request)
        response = self._route(served, stage, resource_path, request, request_id)
        if served.cors is not None:
            response = served.cors.decorate(request, response)
        return response

    def _route(
        self, served: _ServedApi, stage: Stage, resource_path: str, request: GatewayRequest, request_id: str
    ) -> GatewayResponse:
        api = served.api
        match = served.routes.match(request.method, resource_path)
        if match is None:
            return error_response(api.kind, GatewayError.NO_ROUTE)
        route = match.route
        if not served.throttles.allow(stage, request.method, route.path, route.key):
            return error_response(api.kind, GatewayError.THROTTLED)
        integration = route.integration
        if isinstance(integration, MockIntegration):
            return GatewayResponse(
                status=integration.status,
                headers=list(integration.headers),
                body=integration.body.encode("utf-8"),
            )
        if isinstance(integration, AwsIntegration) and self._aws is not None:
            return self._aws.handle(
                integration,
                _forwarded(request),
                path_parameters=match.path_parameters,
                context=self._context(api, stage, route.path, request, request_id),
                stage_variables=stage.variables,
                binary_media_types=api.binary_media_types,
            )
        if not isinstance(integration, LambdaProxyIntegration):
            what = getattr(integration, "description", "an AWS service integration (no AWS endpoint)")
            LOG.warning("%s %s: %s is not supported locally", api.api_id, route.key, what)
            return error_response(api.kind, GatewayError.INTERNAL)
        facts = RequestFacts(
            api=api,
            stage=stage,
            route=route,
            path_parameters=match.path_parameters,
            resource_path=resource_path,
            request_id=request_id,
            received=self._now(),
            account_id=self._account_id,
        )
        return self._invoke(api, integration, request, facts, match)

    def _context(
        self, api: Api, stage: Stage, resource_path: str, request: GatewayRequest, request_id: str
    ) -> dict[str, Any]:
        """``$context`` for mapping templates and ``context.*`` parameter mappings."""
        received = self._now()
        return {
            "requestId": request_id,
            "extendedRequestId": request_id,
            "apiId": api.api_id,
            "accountId": self._account_id,
            "stage": stage.name,
            "resourcePath": resource_path,
            "httpMethod": request.method,
            "path": request.path.split("?", 1)[0],
            "protocol": request.protocol,
            "domainName": request.host,
            "requestTime": received.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestTimeEpoch": int(received.timestamp() * 1000),
            "identity": {"sourceIp": request.source_ip, "userAgent": request.header("User-Agent") or ""},
        }

    def _invoke(
        self,
        api: Api,
        integration: LambdaProxyIntegration,
        request: GatewayRequest,
        facts: RequestFacts,
        match: RouteMatch,
    ) -> GatewayResponse:
        version_1 = integration.payload_format == "1.0"
        event = (_REST_EVENTS if version_1 else _HTTP_EVENTS).build(_forwarded(request), facts)
        try:
            future: Future[InvocationResult] = self._executor.submit(
                self._invoker.invoke, integration.function, event
            )
            result = future.result(timeout=integration.timeout_s)
        except FutureTimeoutError:
            # API Gateway gives up; the function runs on to its own timeout, as on AWS.
            LOG.info("%s: integration timed out after %.1f s", match.route.key, integration.timeout_s)
            return error_response(api.kind, GatewayError.TIMEOUT)
        except TooManyRequestsError:
            return error_response(api.kind, GatewayError.THROTTLED)
        except FunctionNotFoundError:
            LOG.warning("%s: function %s is not deployed", match.route.key, integration.function)
            return error_response(api.kind, GatewayError.INTERNAL)
        except RuntimeError:  # the executor or the runtime is shutting down
            LOG.warning("%s: invocation failed", match.route.key, exc_info=True)
            return error_response(api.kind, GatewayError.INTERNAL)
        if result.error_kind == "timeout":
            return error_response(api.kind, GatewayError.TIMEOUT)
        if not result.ok:
            LOG.info("%s: function error %s", match.route.key, _error_type(result.payload))
            return error_response(api.kind, GatewayError.INTEGRATION_FAILED)
        try:
            return (_REST_RESPONSES if version_1 else _HTTP_RESPONSES).map(result.payload)
        except MalformedResponseError as exc:
            LOG.info("%s: malformed Lambda proxy response: %s", match.route.key, exc)
            return error_response(api.kind, GatewayError.INTEGRATION_FAILED)


def _select_stage(api: Api, path: str) -> tuple[Stage, str] | None:
    """The stage a request path names and the path after it; HTTP APIs fall back to ``$default``."""
    trimmed = path.lstrip("/")
    first, _, rest = trimmed.partition("/")
    stage = api.stage(first) if first and first != DEFAULT_STAGE else None
    if stage is not None:
        return stage, "/" + rest
    if api.kind is ApiKind.HTTP:
        default = api.stage(DEFAULT_STAGE)
        if default is not None:
            return default, "/" + trimmed
    return None


def _forwarded(request: GatewayRequest) -> GatewayRequest:
    """The request with the headers API Gateway adds on its way to the integration."""
    forwarded_for = request.header("X-Forwarded-For")
    extra = [
        ("X-Forwarded-For", f"{forwarded_for}, {request.source_ip}" if forwarded_for else request.source_ip),
        ("X-Forwarded-Proto", "http"),
    ]
    port = request.host.rpartition(":")[2] if ":" in request.host else "80"
    extra.append(("X-Forwarded-Port", port))
    skip = {name.lower() for name, _ in extra}
    headers = tuple((n, v) for n, v in request.headers if n.lower() not in skip) + tuple(extra)
    return GatewayRequest(
        method=request.method,
        path=request.path,
        query=request.query,
        headers=headers,
        body=request.body,
        source_ip=request.source_ip,
        protocol=request.protocol,
        host=request.host,
    )


def _error_type(payload: Any) -> str:
    if isinstance(payload, dict):
        return str(payload.get("errorType", "Unhandled"))
    return "Unhandled"
