"""``ApiGatewayServer``: the deployed APIs over real HTTP on 127.0.0.1.

One server (localcloud's :class:`~localcloud.httpserver.HttpServer`: HTTP/1.1 and HTTP/2 cleartext)
serves every API. An API's requests arrive either under the path prefix
``/restapis/<apiId>`` (``http://127.0.0.1:<port>/restapis/<apiId>/<stage>/races/42``), or with the
API's own host name, ``<apiId>.execute-api.localhost:<port>`` (``*.localhost`` resolves to this
machine in browsers and most resolvers), where paths are exactly those on AWS.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from localcloud.apigateway.discovery import discover_apis
from localcloud.apigateway.gateway import ApiGateway
from localcloud.apigateway.messages import GatewayRequest, GatewayResponse
from localcloud.apigateway.model import DEFAULT_STAGE, Api, ApiKind
from localcloud.apigateway.service import AwsServiceIntegration
from localcloud.aws import ACCOUNT_ID, DEFAULT_REGION
from localcloud.httpserver import HttpServer, StartResponse, request_headers, request_target, respond
from localcloud.invocation import Invoker

if TYPE_CHECKING:
    from localcloud.deploy import DeployResult

LOG = logging.getLogger(__name__)

PATH_PREFIX = "/restapis/"
# https://<apiId>.execute-api.<region>.amazonaws.com (the URL form templates' outputs use).
_EXECUTE_API_URL = re.compile(
    r"https://(?P<api>[A-Za-z0-9]+)\.execute-api\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?"
)
_MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit


@dataclass(frozen=True)
class ApiInfo:
    """One served API and where to reach it.

    ``base_url`` points at the API's main stage (the template's own stage; for an HTTP API with a
    ``$default`` stage, the API's root), without a trailing slash; ``stage_urls`` has every stage.
    ``aws_url`` is the ``https://<apiId>.execute-api.<region>.amazonaws.com`` form that stack outputs
    carry; :meth:`ApiGatewayServer.local_url` maps it to the local one.
    """

    api_id: str
    logical_id: str
    stack_name: str
    kind: ApiKind
    title: str
    base_url: str
    stage_urls: dict[str, str] = field(default_factory=dict)
    routes: tuple[str, ...] = ()
    aws_url: str = ""


class ApiGatewayServer:
    """Serves the APIs of deployed stacks over HTTP, invoking their functions through ``invoker``.

    The port is bound on construction, so :attr:`url` and :meth:`register` work before :meth:`start`.
    """

    def __init__(
        self,
        invoker: Invoker,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        region: str = DEFAULT_REGION,
        account_id: str = ACCOUNT_ID,
        aws_endpoint: str | None = None,
    ) -> None:
        self.region = region
        self.account_id = account_id
        # ``aws`` (service) integrations call this endpoint (localcloud's); without one they answer 500.
        aws = AwsServiceIntegration(aws_endpoint, region, account_id) if aws_endpoint else None
        self.gateway = ApiGateway(invoker, account_id, aws=aws)
        self._http = HttpServer(self.wsgi_app, host=host, port=port, name="apigateway")
        self._http.bind()
        self._infos: dict[str, ApiInfo] = {}
        self._lock = threading.Lock()

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> ApiGatewayServer:
        """Start serving on a background thread."""
        if not self._http.running:
            self._http.start()
            LOG.info("API Gateway front door on %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving and release the port (running invocations finish on their own)."""
        self._http.stop()
        self.gateway.close()

    def __enter__(self) -> ApiGatewayServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port."""
        return self._http.port

    @property
    def url(self) -> str:
        """``http://<host>:<port>``."""
        return self._http.url

    # -- APIs -----------------------------------------------------------------------------------
    def register(self, deploy_result: DeployResult) -> list[ApiInfo]:
        """Serve the APIs one deployed stack declares, replacing that stack's previous ones."""
        apis = discover_apis(deploy_result, self.region, self.account_id)
        self.gateway.replace_stack(deploy_result.stack_name, apis)
        infos = [self._info(api) for api in apis]
        with self._lock:
            self._infos = {k: v for k, v in self._infos.items() if v.stack_name != deploy_result.stack_name}
            self._infos.update((info.api_id, info) for info in infos)
        for info in infos:
            LOG.info("%s API %s (%s) at %s", info.kind.value, info.logical_id, info.api_id, info.base_url)
        return infos

    def on_deploy(self, deploy_result: DeployResult) -> None:
        """:meth:`register` as a deploy listener (``LocalCloud.on_deploy(server.on_deploy)``)."""
        self.register(deploy_result)

    def unregister(self, stack_name: str) -> None:
        """Stop serving the APIs of ``stack_name``."""
        self.gateway.replace_stack(stack_name, [])
        with self._lock:
            self._infos = {k: v for k, v in self._infos.items() if v.stack_name != stack_name}

    @property
    def apis(self) -> list[ApiInfo]:
        """Every API being served."""
        with self._lock:
            return list(self._infos.values())

    def base_url(self, api_id: str, stage: str | None = None) -> str:
        """The local base URL of an API's stage (``$default``: the API's root), no trailing slash."""
        root = f"{self.url}{PATH_PREFIX}{api_id}"
        if stage is None or stage == DEFAULT_STAGE:
            return root
        return f"{root}/{stage}"

    def local_url(self, text: str) -> str:
        """``text`` with every ``https://<apiId>.execute-api.<region>.amazonaws.com`` of a served API
        made local, e.g. a stack output ``https://abc123.execute-api.us-east-1.amazonaws.com/v1``
        becomes ``http://127.0.0.1:<port>/restapis/abc123/v1``."""
        with self._lock:
            served = set(self._infos)

        def replace(match: re.Match[str]) -> str:
            api_id = match.group("api")
            return self.base_url(api_id) if api_id in served else match.group(0)

        return _EXECUTE_API_URL.sub(replace, text)

    def index(self) -> GatewayResponse:
        """The served APIs as JSON (what ``GET /`` answers), so a person can find the URLs."""
        listing = [
            {
                "apiId": info.api_id,
                "logicalId": info.logical_id,
                "stack": info.stack_name,
                "kind": info.kind.value,
                "baseUrl": info.base_url,
                "stages": info.stage_urls,
                "routes": list(info.routes),
            }
            for info in self.apis
        ]
        body = json.dumps({"apis": listing}, indent=2).encode()
        return GatewayResponse(200, [("Content-Type", "application/json")], body)

    def _info(self, api: Api) -> ApiInfo:
        stage_urls = {stage.name: self.base_url(api.api_id, stage.name) for stage in api.stages}
        return ApiInfo(
            api_id=api.api_id,
            logical_id=api.logical_id,
            stack_name=api.stack_name,
            kind=api.kind,
            title=api.title,
            base_url=self.base_url(api.api_id, api.primary_stage),
            stage_urls=stage_urls,
            routes=tuple(route.key for route in api.routes),
            aws_url=f"https://{api.api_id}.execute-api.{self.region}.amazonaws.com",
        )

    def dispatch(self, host: str, target: str) -> tuple[str, str, str] | None:
        """Which API a request is for: (api id, path on the API's host, query), or None."""
        parts = urlsplit(target)
        path, query = parts.path or "/", parts.query
        label = host.split(":", 1)[0].split(".", 1)[0]
        if label and self.gateway.api(label) is not None and ".execute-api." in host:
            return label, path, query
        if path.startswith(PATH_PREFIX):
            api_id, _, rest = path[len(PATH_PREFIX) :].partition("/")
            if api_id:
                return api_id, "/" + rest, query
        return None

    # -- HTTP -----------------------------------------------------------------------------------
    def wsgi_app(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """The front door as a WSGI app: parse the request, hand it to the gateway, answer."""
        response = self._answer(environ)
        # 1xx, 204 and 304 responses never carry a body; framing is the server's business.
        body = b"" if response.status < 200 or response.status in (204, 304) else response.body
        headers = [
            (name, value)
            for name, value in response.headers
            if name.lower() not in ("content-length", "transfer-encoding", "connection")
        ]
        # HEAD: the Content-Length of the GET answer, and the server sends no body.
        return respond(start_response, response.status, headers, body)

    def _answer(self, environ: dict[str, Any]) -> GatewayResponse:
        method = environ["REQUEST_METHOD"]
        target_text = request_target(environ)
        host = environ.get("HTTP_HOST") or f"127.0.0.1:{self.port}"
        try:
            body = _read_body(environ)
        except ValueError as exc:
            _discard_body(environ)
            return GatewayResponse.json_message(400, str(exc))
        target = self.dispatch(host, target_text)
        if target is None:
            listing = urlsplit(target_text).path.rstrip("/") in ("", PATH_PREFIX.rstrip("/"))
            if method == "GET" and listing:
                return self.index()
            return GatewayResponse.json_message(404, "Not Found")
        api_id, path, query = target
        request = GatewayRequest(
            method=method,
            path=path,
            query=query,
            headers=tuple(request_headers(environ)),
            body=body,
            source_ip=str(environ.get("REMOTE_ADDR", "127.0.0.1")),
            protocol=str(environ.get("SERVER_PROTOCOL", "HTTP/1.1")),
            host=host,
        )
        try:
            return self.gateway.handle(api_id, request)
        except Exception:  # a bug must answer 500, not drop the connection
            LOG.exception("handling %s %s failed", method, target_text)
            return GatewayResponse.json_message(500, "Internal server error", spaced=True)


# How much of a refused body is read and dropped before the answer (a client may send it all first).
_DISCARD_LIMIT_BYTES = 64 * 1024 * 1024


def _discard_body(environ: dict[str, Any]) -> None:
    """Read what is left of a refused body and drop it.

    HTTP/1.1 clients such as requests send the whole body before they read the answer; unread, it
    fills the connection and the client blocks writing it, never seeing the 400.
    """
    stream = environ["wsgi.input"]
    left = _DISCARD_LIMIT_BYTES
    while left > 0 and (chunk := stream.read(min(65536, left))):
        left -= len(chunk)


def _read_body(environ: dict[str, Any]) -> bytes:
    """The request body, up to API Gateway's payload limit (``ValueError`` beyond it).

    The server ends ``wsgi.input`` where the body ends, also for chunked requests without a length.
    """
    declared = environ.get("CONTENT_LENGTH")
    if declared and int(declared) > _MAX_BODY_BYTES:
        raise ValueError("Request Too Long")
    body = environ["wsgi.input"].read(_MAX_BODY_BYTES + 1)
    if len(body) > _MAX_BODY_BYTES:
        raise ValueError("Request Too Long")
    return bytes(body)
