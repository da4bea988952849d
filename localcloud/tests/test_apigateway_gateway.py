"""The API Gateway front door without sockets: discovery, routing, proxy events, responses, errors.

APIs come from a tiny SAM template run through localcloud's own translation and stripping; functions
run in process through a stand-in Invoker that imports each function's Handler from the template's
CodeUri folder (the real runtime is tested elsewhere).
"""

from __future__ import annotations

import base64
import importlib.util
import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import (
    APIGatewayProxyEventModel,
    APIGatewayProxyEventV2Model,
)
from localcloud.apigateway import ApiGateway, ApiKind, GatewayRequest, GatewayResponse, discover_apis
from localcloud.apigateway.model import Route
from localcloud.apigateway.routing import RouteTable
from localcloud.deploy import (
    DeployResult,
    FunctionSource,
    SkippedResource,
    TemplatePreparer,
    strip_unsupported,
    translate,
)
from localcloud.invocation import FunctionNotFoundError, InvocationResult, TooManyRequestsError
from localcloud.templates import load_template

TEMPLATES = Path(__file__).parent / "templates"
BASIC = TEMPLATES / "apigateway_basic" / "template.yaml"
REGION = "us-east-1"
ACCOUNT = "123456789012"

pytestmark = pytest.mark.timeout(30)


# -- the stand-in runtime and the deploy ------------------------------------------------------------
class InProcessInvoker:
    """An Invoker that runs handlers in this process: the Lambda runtime's stand-in for these tests.

    A handler raising ``TimeoutError`` is reported the way the runtime reports a function timeout.
    """

    def __init__(self, handlers: dict[str, Callable[[Any, Any], Any]]) -> None:
        self.handlers = handlers
        self.events: list[tuple[str, Any]] = []
        self.throttled: set[str] = set()
        self._lock = threading.Lock()

    def invoke(self, function: str, event: Any) -> InvocationResult:
        name = function.rsplit(":", 1)[-1] if function.startswith("arn:") else function
        handler = self.handlers.get(name)
        if handler is None:
            raise FunctionNotFoundError(function)
        if name in self.throttled:
            raise TooManyRequestsError(name)
        with self._lock:
            self.events.append((name, event))
        request_id = f"req-{len(self.events)}"
        try:
            # The round trip through JSON is what the real runtime does to events and results.
            payload = handler(json.loads(json.dumps(event)), None)
            return InvocationResult(request_id=request_id, payload=json.loads(json.dumps(payload)))
        except TimeoutError as exc:
            error = {"errorMessage": str(exc), "errorType": "Sandbox.Timedout"}
            return InvocationResult(request_id, error, function_error="Unhandled", error_kind="timeout")
        except Exception as exc:
            error = {"errorMessage": str(exc), "errorType": type(exc).__name__, "stackTrace": []}
            return InvocationResult(request_id, error, function_error="Unhandled", error_kind="exception")

    def last_event(self) -> Any:
        return self.events[-1][1]


def offline_deploy(
    template_path: Path, stack_name: str
) -> tuple[DeployResult, dict[str, Callable[..., Any]]]:
    """A DeployResult as the deployer would report it (functions named like CloudFormation's), and
    each function's handler imported from its CodeUri folder. Nothing is resolved against a stack,
    so the front door resolves the integrations' Fn::Sub itself."""
    preparer = TemplatePreparer(stack_name, template_path.parent)
    translated = translate(preparer.prepare(load_template(template_path)), {}, REGION)
    stripped, skipped = strip_unsupported(translated, stack_name)
    functions: dict[str, FunctionSource] = {}
    handlers: dict[str, Callable[..., Any]] = {}
    resources: dict[str, str] = {}
    for logical_id, resource in stripped["Resources"].items():
        resources[logical_id] = f"{stack_name}-{logical_id}-PHYSICAL"
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        name = resources[logical_id]
        code_dir = preparer.code_dirs[logical_id][0]
        functions[name] = FunctionSource(
            logical_id, name, f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}", code_dir
        )
        module_name, _, function_name = resource["Properties"]["Handler"].rpartition(".")
        spec = importlib.util.spec_from_file_location(f"apigw_{module_name}", code_dir / f"{module_name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        handlers[name] = getattr(module, function_name)
    result = DeployResult(
        stack_name=stack_name,
        stack_id=f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{stack_name}/1",
        status="CREATE_COMPLETE",
        outputs={},
        resources=resources,
        functions=functions,
        skipped=skipped,
        translated_template=translated,
    )
    return result, handlers


@pytest.fixture(scope="module")
def deployed() -> tuple[DeployResult, dict[str, Callable[..., Any]]]:
    return offline_deploy(BASIC, "shop")


@pytest.fixture
def invoker(deployed) -> InProcessInvoker:
    return InProcessInvoker(deployed[1])


FIXED_NOW = datetime(2026, 3, 4, 5, 6, 7, 890000, tzinfo=UTC)


@pytest.fixture
def gateway(deployed, invoker):
    gateway = ApiGateway(invoker, ACCOUNT, now=lambda: FIXED_NOW)
    gateway.replace_stack("shop", discover_apis(deployed[0], REGION, ACCOUNT))
    yield gateway
    gateway.close()


def api_id(deployed, logical_id: str) -> str:
    return next(s.physical_id for s in deployed[0].skipped if s.logical_id == logical_id)


def send(
    gateway: ApiGateway, api: str, method: str, target: str, headers=(), body: bytes = b""
) -> GatewayResponse:
    path, _, query = target.partition("?")
    request = GatewayRequest(
        method=method,
        path=path,
        query=query,
        headers=(("Host", f"{api}.execute-api.localhost:4510"), ("User-Agent", "tests/1.0"), *headers),
        body=body,
        source_ip="127.0.0.1",
        host=f"{api}.execute-api.localhost:4510",
    )
    return gateway.handle(api, request)


def body_json(response: GatewayResponse) -> Any:
    return json.loads(response.body)


# -- discovery -----------------------------------------------------------------------------------------
def test_discovery_finds_explicit_and_implicit_rest_and_http_apis(deployed):
    apis = {api.logical_id: api for api in discover_apis(deployed[0], REGION, ACCOUNT)}

    assert set(apis) == {"RaceApi", "LimitedApi", "ItemsHttpApi", "ServerlessRestApi", "ServerlessHttpApi"}
    race = apis["RaceApi"]
    assert race.kind is ApiKind.REST and race.primary_stage == "v1"
    # SAM's Deployment also creates the "Stage" stage, as on AWS.
    assert {stage.name for stage in race.stages} == {"v1", "Stage"}
    assert race.stage("v1").variables == {"colour": "blue"}
    assert "image/png" in race.binary_media_types
    keys = {route.key for route in race.routes}
    assert {"GET /races/{raceId}", "ANY /files/{proxy+}", "OPTIONS /races", "POST /races"} <= keys
    # Fn::Sub with ${EchoFunction.Arn} is resolved to the deployed function's name.
    echo = next(r for r in race.routes if r.key == "GET /races/{raceId}").integration
    assert echo.function == "shop-EchoFunction-PHYSICAL"
    slow = next(r for r in race.routes if r.key == "GET /slow").integration
    assert slow.timeout_s == pytest.approx(0.3)

    items = apis["ItemsHttpApi"]
    assert items.kind is ApiKind.HTTP and items.primary_stage == "dev"
    assert items.cors is not None and items.cors.allow_origins == ("https://app.example",)
    formats = {route.key: route.integration.payload_format for route in items.routes}
    assert formats["GET /items/{id}"] == "2.0" and formats["GET /legacy"] == "1.0"
    assert apis["ServerlessHttpApi"].primary_stage == "$default"
    assert apis["LimitedApi"].stage("live").default_throttle.burst == 2


def test_stage_resolved_properties_are_preferred_over_the_raw_definition(deployed):
    # Given the deployer resolved the integration URIs (as it does against a real stack)
    result, _ = offline_deploy(BASIC, "shop")
    for item in result.skipped:
        if item.logical_id == "ServerlessRestApi":
            item.resolved_properties = json.loads(
                json.dumps(item.definition["Properties"]).replace("${AWS::Region}", REGION)
            )
            body = item.resolved_properties["Body"]
            body["paths"]["/hello"]["get"]["x-amazon-apigateway-integration"]["uri"] = (
                f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/"
                f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:resolved-name/invocations"
            )

    # When the APIs are discovered
    apis = {api.logical_id: api for api in discover_apis(result, REGION, ACCOUNT)}

    # Then the resolved URI is used
    (route,) = apis["ServerlessRestApi"].routes
    assert route.integration.function == "resolved-name"


# -- routing ---------------------------------------------------------------------------------------------
def _table(kind: ApiKind, *keys: str) -> RouteTable:
    routes = []
    for key in keys:
        method, _, path = key.partition(" ")
        routes.append(Route(method, path or "$default", integration=None))  # type: ignore[arg-type]
    return RouteTable(routes, kind)


@pytest.mark.parametrize("kind", [ApiKind.REST, ApiKind.HTTP])
def test_most_specific_route_wins(kind):
    table = _table(
        kind, "GET /races/latest", "GET /races/{raceId}", "ANY /{proxy+}", "GET /races/{raceId}/{proxy+}"
    )

    assert table.match("GET", "/races/latest").route.path == "/races/latest"
    match = table.match("GET", "/races/r%2042")
    assert match.route.path == "/races/{raceId}" and match.path_parameters == {"raceId": "r 42"}
    greedy = table.match("GET", "/races/r1/laps/3/")
    assert greedy.route.path == "/races/{raceId}/{proxy+}"
    assert greedy.path_parameters == {"raceId": "r1", "proxy": "laps/3"}
    assert table.match("DELETE", "/anything/else").route.key == "ANY /{proxy+}"
    # A greedy variable needs at least one segment: the root is not matched.
    assert table.match("GET", "/") is None


def test_rest_picks_the_resource_first_then_its_method_while_http_picks_by_method():
    keys = ("POST /races/latest", "GET /races/{raceId}")
    # REST: /races/latest is the resource; it has no GET, so there is no route.
    assert _table(ApiKind.REST, *keys).match("GET", "/races/latest") is None
    # HTTP: the most specific route whose method matches.
    assert _table(ApiKind.HTTP, *keys).match("GET", "/races/latest").route.key == "GET /races/{raceId}"
    # An exact method beats ANY on the same resource.
    assert _table(ApiKind.REST, "ANY /x", "GET /x").match("GET", "/x").route.key == "GET /x"
    assert _table(ApiKind.HTTP, "ANY /x", "GET /x").match("GET", "/x").route.key == "GET /x"
    # HTTP APIs fall back to $default.
    assert _table(ApiKind.HTTP, "GET /x", "$default").match("PUT", "/y").route.key == "$default"


# -- payload format 1.0 ------------------------------------------------------------------------------
def test_rest_event_is_payload_1_0_and_validates_against_powertools(gateway, invoker, deployed):
    # Given a REST API with a path parameter route
    api = api_id(deployed, "RaceApi")

    # When a request with repeated query parameters and headers arrives
    response = send(
        gateway,
        api,
        "GET",
        "/v1/races/r%2042?lap=1&lap=2&view=full",
        headers=(("X-Multi", "a"), ("X-Multi", "b"), ("Cookie", "session=1")),
    )

    # Then the function saw API Gateway's REST proxy event
    assert response.status == 200, response.body
    event = invoker.last_event()
    APIGatewayProxyEventModel.model_validate(event)
    assert event["resource"] == "/races/{raceId}"
    assert event["path"] == "/races/r%2042"
    assert event["httpMethod"] == "GET"
    assert event["pathParameters"] == {"raceId": "r 42"}
    assert event["queryStringParameters"] == {"lap": "2", "view": "full"}
    assert event["multiValueQueryStringParameters"] == {"lap": ["1", "2"], "view": ["full"]}
    assert event["headers"]["X-Multi"] == "b"
    assert event["multiValueHeaders"]["X-Multi"] == ["a", "b"]
    assert event["headers"]["X-Forwarded-For"] == "127.0.0.1"
    assert event["stageVariables"] == {"colour": "blue"}
    assert event["body"] is None and event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["resourcePath"] == "/races/{raceId}"
    assert context["path"] == "/v1/races/r%2042"
    assert context["stage"] == "v1"
    assert context["apiId"] == api
    assert context["accountId"] == ACCOUNT
    assert context["identity"]["sourceIp"] == "127.0.0.1"
    assert context["identity"]["userAgent"] == "tests/1.0"
    assert context["requestTimeEpoch"] == int(FIXED_NOW.timestamp() * 1000)
    assert context["requestTime"] == "04/Mar/2026:05:06:07 +0000"
    assert context["domainName"] == f"{api}.execute-api.localhost:4510"
    assert context["domainPrefix"] == api
    assert context["requestId"] == response.header("x-amzn-RequestId")


def test_rest_absent_query_and_path_parameters_are_null(gateway, invoker, deployed):
    send(gateway, api_id(deployed, "RaceApi"), "GET", "/v1/races")

    event = invoker.last_event()
    assert event["queryStringParameters"] is None
    assert event["multiValueQueryStringParameters"] is None
    assert event["pathParameters"] is None


def test_rest_response_headers_status_and_multi_value_headers(gateway, deployed):
    response = send(gateway, api_id(deployed, "RaceApi"), "GET", "/v1/races/latest")

    assert response.status == 200
    assert response.header("X-Handler") == "echo"
    assert [v for n, v in response.headers if n == "X-Repeated"] == ["one", "two"]
    assert json.loads(response.body)["resource"] == "/races/latest"


def test_rest_bodies_text_and_binary(gateway, invoker, deployed):
    api = api_id(deployed, "RaceApi")

    send(gateway, api, "POST", "/v1/races", headers=(("Content-Type", "application/json"),), body=b'{"a": 1}')
    text_event = invoker.last_event()
    png = b"\x89PNG\r\n\x1a\n"
    send(gateway, api, "POST", "/v1/races", headers=(("Content-Type", "image/png"),), body=png)
    binary_event = invoker.last_event()
    image = send(gateway, api, "GET", "/v1/image")

    assert text_event["body"] == '{"a": 1}' and text_event["isBase64Encoded"] is False
    assert binary_event["isBase64Encoded"] is True and base64.b64decode(binary_event["body"]) == png
    assert (
        image.status == 200
        and image.body.startswith(b"\x89PNG")
        and image.header("Content-Type") == "image/png"
    )


def test_greedy_any_route_on_rest(gateway, invoker, deployed):
    response = send(gateway, api_id(deployed, "RaceApi"), "DELETE", "/v1/files/a/b%20c.txt")

    assert response.status == 200
    event = invoker.last_event()
    assert event["resource"] == "/files/{proxy+}"
    assert event["pathParameters"] == {"proxy": "a/b c.txt"}
    assert event["httpMethod"] == "DELETE"


def test_implicit_rest_api_serves_its_prod_stage(gateway, deployed):
    api = api_id(deployed, "ServerlessRestApi")

    assert send(gateway, api, "GET", "/Prod/hello").status == 200
    assert send(gateway, api, "GET", "/hello").status == 403


# -- payload format 2.0 ------------------------------------------------------------------------------
def test_http_event_is_payload_2_0_and_validates_against_powertools(gateway, invoker, deployed):
    api = api_id(deployed, "ItemsHttpApi")

    response = send(
        gateway,
        api,
        "GET",
        "/dev/items/i-7?tag=a&tag=b&q=",
        headers=(("X-Multi", "a"), ("x-multi", "b"), ("Cookie", "a=1; b=2")),
    )

    assert response.status == 200, response.body
    event = invoker.last_event()
    APIGatewayProxyEventV2Model.model_validate(event)
    assert event["version"] == "2.0"
    assert event["routeKey"] == "GET /items/{id}"
    # Named stages are part of rawPath and http.path, as on AWS.
    assert event["rawPath"] == "/dev/items/i-7"
    assert event["rawQueryString"] == "tag=a&tag=b&q="
    assert event["queryStringParameters"] == {"tag": "a,b", "q": ""}
    assert event["pathParameters"] == {"id": "i-7"}
    assert event["headers"]["x-multi"] == "a,b"
    assert all(name == name.lower() for name in event["headers"])
    assert "cookie" not in event["headers"] and event["cookies"] == ["a=1", "b=2"]
    assert event["stageVariables"] == {"tier": "gold"}
    assert event["isBase64Encoded"] is False and "body" not in event
    context = event["requestContext"]
    assert context["http"] == {
        "method": "GET",
        "path": "/dev/items/i-7",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": "tests/1.0",
    }
    assert context["stage"] == "dev" and context["routeKey"] == "GET /items/{id}"
    assert context["time"] == "04/Mar/2026:05:06:07 +0000"
    assert context["timeEpoch"] == int(FIXED_NOW.timestamp() * 1000)
    assert context["requestId"] == response.header("Apigw-Requestid")


def test_http_event_without_query_or_parameters_omits_them(gateway, invoker, deployed):
    send(gateway, api_id(deployed, "ServerlessHttpApi"), "GET", "/pets/p1")

    event = invoker.last_event()
    APIGatewayProxyEventV2Model.model_validate(event)
    # The $default stage is served at the root and is not part of the path.
    assert event["rawPath"] == "/pets/p1" and event["requestContext"]["stage"] == "$default"
    assert "queryStringParameters" not in event and "cookies" not in event and "stageVariables" not in event


def test_http_body_binary_is_base64(gateway, invoker, deployed):
    api = api_id(deployed, "ItemsHttpApi")

    send(
        gateway,
        api,
        "POST",
        "/dev/things/upload",
        headers=(("Content-Type", "application/octet-stream"),),
        body=b"\x00\xff",
    )
    binary = invoker.last_event()
    send(
        gateway,
        api,
        "POST",
        "/dev/things/upload",
        headers=(("Content-Type", "application/json"),),
        body=b"{}",
    )
    text = invoker.last_event()

    assert binary["isBase64Encoded"] is True and base64.b64decode(binary["body"]) == b"\x00\xff"
    assert binary["routeKey"] == "ANY /things/{proxy+}" and binary["pathParameters"] == {"proxy": "upload"}
    assert text["isBase64Encoded"] is False and text["body"] == "{}"


def test_http_api_plain_response_is_200_json(gateway, deployed):
    response = send(gateway, api_id(deployed, "ItemsHttpApi"), "GET", "/dev/plain")

    assert response.status == 200
    assert response.header("Content-Type") == "application/json"
    assert json.loads(response.body) == {"hello": "world", "items": [1, 2]}


def test_http_api_route_with_payload_format_1_0(gateway, invoker, deployed):
    response = send(gateway, api_id(deployed, "ItemsHttpApi"), "GET", "/dev/legacy?x=1")

    assert response.status == 200
    event = invoker.last_event()
    APIGatewayProxyEventModel.model_validate(event)
    assert event["resource"] == "/legacy" and event["queryStringParameters"] == {"x": "1"}


# -- errors -------------------------------------------------------------------------------------------
def test_rest_plain_object_response_is_malformed_502(gateway, deployed):
    # The same handler behind a REST API: without statusCode and with unexpected keys it is malformed.
    response = send(gateway, api_id(deployed, "RaceApi"), "GET", "/v1/plain")

    assert response.status == 502
    assert body_json(response) == {"message": "Internal server error"}


def test_malformed_response_is_502(gateway, deployed):
    response = send(gateway, api_id(deployed, "RaceApi"), "GET", "/v1/malformed")

    assert response.status == 502
    assert response.body == b'{"message": "Internal server error"}'


def test_function_error_is_502_on_rest_and_500_on_http(gateway, deployed):
    rest = send(gateway, api_id(deployed, "RaceApi"), "GET", "/v1/broken")
    http = send(gateway, api_id(deployed, "ItemsHttpApi"), "GET", "/dev/broken")

    assert rest.status == 502 and body_json(rest) == {"message": "Internal server error"}
    assert http.status == 500 and body_json(http) == {"message": "Internal Server Error"}


def test_function_timeout_is_504(gateway, deployed):
    response = send(gateway, api_id(deployed, "RaceApi"), "GET", "/v1/timed-out")

    assert response.status == 504
    assert body_json(response) == {"message": "Endpoint request timed out"}


def test_integration_timeout_is_504_without_waiting_for_the_function(gateway, deployed):
    started = time.monotonic()
    response = send(gateway, api_id(deployed, "RaceApi"), "GET", "/v1/slow")
    elapsed = time.monotonic() - started

    assert response.status == 504
    # The route's TimeoutInMillis is 300; the handler takes 1 s.
    assert 0.25 < elapsed < 0.9


def test_throttled_function_is_429(gateway, invoker, deployed):
    invoker.throttled.add("shop-EchoFunction-PHYSICAL")

    response = send(gateway, api_id(deployed, "RaceApi"), "GET", "/v1/races")

    assert response.status == 429
    assert body_json(response) == {"message": "Too Many Requests"}


def test_stage_throttling_burst_then_429(gateway, deployed):
    api = api_id(deployed, "LimitedApi")

    statuses = [send(gateway, api, "GET", "/live/ping").status for _ in range(4)]

    # Burst 2, and 0.01 requests per second after that.
    assert statuses == [200, 200, 429, 429]


def test_unknown_route_is_403_on_rest_and_404_on_http(gateway, deployed):
    rest = send(gateway, api_id(deployed, "RaceApi"), "GET", "/v1/nowhere")
    wrong_method = send(gateway, api_id(deployed, "RaceApi"), "DELETE", "/v1/races")
    wrong_stage = send(gateway, api_id(deployed, "RaceApi"), "GET", "/v2/races")
    http = send(gateway, api_id(deployed, "ItemsHttpApi"), "GET", "/dev/nowhere")

    for response in (rest, wrong_method, wrong_stage):
        assert response.status == 403
        assert response.body == b'{"message":"Missing Authentication Token"}'
    assert http.status == 404 and http.body == b'{"message":"Not Found"}'


# -- CORS ---------------------------------------------------------------------------------------------
def test_rest_cors_preflight_answers_with_the_declared_headers(gateway, invoker, deployed):
    response = send(
        gateway,
        api_id(deployed, "RaceApi"),
        "OPTIONS",
        "/v1/races/r1",
        headers=(("Origin", "https://app.example"), ("Access-Control-Request-Method", "GET")),
    )

    assert response.status == 200
    assert response.header("Access-Control-Allow-Origin") == "https://app.example"
    assert response.header("Access-Control-Allow-Methods") == "GET,POST,OPTIONS"
    assert response.header("Access-Control-Allow-Headers") == "Content-Type,Authorization"
    assert response.header("Access-Control-Max-Age") == "600"
    assert invoker.events == []  # a mock integration: no function runs


def test_http_cors_preflight_and_response_headers(gateway, deployed):
    api = api_id(deployed, "ItemsHttpApi")
    origin = ("Origin", "https://app.example")

    preflight = send(
        gateway,
        api,
        "OPTIONS",
        "/dev/items/1",
        headers=(
            origin,
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "Content-Type"),
        ),
    )
    refused = send(
        gateway,
        api,
        "OPTIONS",
        "/dev/items/1",
        headers=(("Origin", "https://evil.example"), ("Access-Control-Request-Method", "GET")),
    )
    actual = send(gateway, api, "GET", "/dev/items/1", headers=(origin,))

    assert preflight.status == 204
    assert preflight.header("Access-Control-Allow-Origin") == "https://app.example"
    assert preflight.header("Access-Control-Allow-Methods") == "GET,POST"
    assert preflight.header("Access-Control-Allow-Headers") == "content-type,x-api-key"
    assert preflight.header("Access-Control-Max-Age") == "300"
    assert refused.status == 204 and refused.header("Access-Control-Allow-Origin") is None
    assert actual.status == 200
    assert actual.header("Access-Control-Allow-Origin") == "https://app.example"
    assert actual.header("Access-Control-Expose-Headers") == "x-total"


def test_redeploying_a_stack_replaces_its_apis(gateway, deployed):
    api = api_id(deployed, "RaceApi")

    gateway.replace_stack("shop", [])

    assert send(gateway, api, "GET", "/v1/races").status == 404
    assert gateway.apis == []


# -- plain CloudFormation resources --------------------------------------------------------------------
def test_explicit_resources_and_methods_and_v2_routes_are_served():
    # Given APIs spelled out as Resource / Method / Deployment and Route / Integration / Stage
    result, handlers = offline_deploy(TEMPLATES / "apigateway_explicit" / "template.yaml", "plain")
    invoker = InProcessInvoker(handlers)
    gateway = ApiGateway(invoker, ACCOUNT)
    apis = {api.logical_id: api for api in discover_apis(result, REGION, ACCOUNT)}
    gateway.replace_stack("plain", apis.values())
    rest_id, http_id = apis["PlainApi"].api_id, apis["PlainHttpApi"].api_id
    try:
        # When each is called
        rest = send(gateway, rest_id, "GET", "/prod/orders/o-1")
        rest_event = invoker.last_event()
        http = send(gateway, http_id, "GET", "/orders/o-2")
        http_event = invoker.last_event()
    finally:
        gateway.close()

    # Then the resource tree and the route keys were rebuilt from the resources
    assert [route.key for route in apis["PlainApi"].routes] == ["GET /orders/{orderId}"]
    assert apis["PlainApi"].stage("prod").default_throttle.rate == 100
    assert rest.status == 200 and http.status == 200
    assert rest_event["resource"] == "/orders/{orderId}" and rest_event["pathParameters"] == {
        "orderId": "o-1"
    }
    assert rest_event["stageVariables"] == {"env": "prod"}
    assert http_event["routeKey"] == "GET /orders/{orderId}" and http_event["rawPath"] == "/orders/o-2"


INVOCATION_URI = "arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Fn.Arn}/invocations"


def test_hand_written_fragment_with_parameters_and_unresolvable_limits():
    # Given a translated fragment whose stage refers to parameters and to something unresolvable
    body = {
        "swagger": "2.0",
        "paths": {
            "/": {
                "get": {
                    "x-amazon-apigateway-integration": {
                        "type": "aws_proxy",
                        "uri": {"Fn::Sub": INVOCATION_URI},
                    }
                }
            }
        },
    }
    stage = {
        "RestApiId": "api123",
        "StageName": {"Ref": "StageName"},
        "MethodSettings": [
            {"ResourcePath": "/*", "HttpMethod": "*", "ThrottlingRateLimit": {"Ref": "Rate"}},
            {"ResourcePath": "/~1", "HttpMethod": "GET", "ThrottlingBurstLimit": {"Fn::ImportValue": "x"}},
        ],
    }
    result = DeployResult(
        stack_name="frag",
        stack_id="frag-id",
        status="CREATE_COMPLETE",
        outputs={},
        resources={"Fn": "frag-Fn"},
        functions={
            "frag-Fn": FunctionSource(
                "Fn", "frag-Fn", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:frag-Fn", None
            )
        },
        skipped=[
            SkippedResource("Api", "AWS::ApiGateway::RestApi", {"Properties": {"Body": body}}, "api123"),
            SkippedResource("Stage", "AWS::ApiGateway::Stage", {"Properties": stage}, "stage123"),
        ],
        translated_template={"Parameters": {"StageName": {"Default": "beta"}, "Rate": {"Default": 5}}},
    )

    # When it is discovered
    (api,) = discover_apis(result, REGION, ACCOUNT)

    # Then parameter defaults fill in, and the unresolvable limit is left out
    assert api.primary_stage == "beta"
    assert api.stage("beta").default_throttle.rate == 5.0
    assert api.stage("beta").route_throttles == {}
    assert api.routes[0].integration.function == "frag-Fn"
