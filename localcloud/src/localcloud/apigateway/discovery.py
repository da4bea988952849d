"""Finding the APIs a deployed stack declares, from the resources localcloud stripped from it.

SAM turns ``AWS::Serverless::Api`` (and the implicit ``ServerlessRestApi``) into an
``AWS::ApiGateway::RestApi`` whose ``Body`` is a Swagger document, plus a ``Deployment`` and a
``Stage``; ``AWS::Serverless::HttpApi`` (and ``ServerlessHttpApi``) into an ``AWS::ApiGatewayV2::Api``
with an OpenAPI ``Body`` and an ``AWS::ApiGatewayV2::Stage``. Plain CloudFormation may instead spell
routes out as ``AWS::ApiGateway::Resource`` / ``Method`` or ``AWS::ApiGatewayV2::Route`` /
``Integration`` resources. All of these are on ``DeployResult.skipped``; the deployer has resolved
their intrinsics against the stack where it could, and :class:`StackIntrinsics` does the rest.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from localcloud.apigateway.model import (
    ANY_METHOD,
    DEFAULT_ROUTE,
    DEFAULT_STAGE,
    HTTP_INTEGRATION_TIMEOUT_S,
    REST_INTEGRATION_TIMEOUT_S,
    Api,
    ApiKind,
    AwsIntegration,
    CorsRule,
    Integration,
    IntegrationResponse,
    LambdaProxyIntegration,
    MockIntegration,
    Route,
    Stage,
    ThrottleLimit,
    UnsupportedIntegration,
)

if TYPE_CHECKING:
    from localcloud.deploy import DeployResult, SkippedResource

LOG = logging.getLogger(__name__)

REST_API = "AWS::ApiGateway::RestApi"
REST_STAGE = "AWS::ApiGateway::Stage"
REST_DEPLOYMENT = "AWS::ApiGateway::Deployment"
REST_RESOURCE = "AWS::ApiGateway::Resource"
REST_METHOD = "AWS::ApiGateway::Method"
HTTP_API = "AWS::ApiGatewayV2::Api"
HTTP_STAGE = "AWS::ApiGatewayV2::Stage"
HTTP_ROUTE = "AWS::ApiGatewayV2::Route"
HTTP_INTEGRATION = "AWS::ApiGatewayV2::Integration"

OPENAPI_ANY_METHOD = "x-amazon-apigateway-any-method"
_OPENAPI_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", OPENAPI_ANY_METHOD}
# arn:aws:apigateway:<region>:lambda:path/2015-03-31/functions/<function arn>/invocations
_INVOCATION_URI = re.compile(r":lambda:path/[^/]+/functions/(?P<function>.+?)/invocations$")
_FUNCTION_ARN = re.compile(
    r"^arn:[^:]+:lambda:[^:]+:[^:]+:function:(?P<name>[^:/]+)(?::(?P<qualifier>[^:/]+))?$"
)
_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")
# API Gateway's account-level defaults, used when a method setting gives only one of the two.
_ACCOUNT_RATE_LIMIT = 10000.0
_ACCOUNT_BURST_LIMIT = 5000


class StackIntrinsics:
    """Resolves what the deployer could not: Ref, GetAtt, Sub and Join against a ``DeployResult``.

    References to functions become their ARNs, to other created resources their physical ids, and to
    stripped resources their stand-in ids; anything else is left as written.
    """

    def __init__(self, result: DeployResult, region: str, account_id: str) -> None:
        self._region = region
        self._account_id = account_id
        self._refs: dict[str, str] = dict(result.resources)
        self._refs.update({item.logical_id: item.physical_id for item in result.skipped})
        self._arns = {source.logical_id: source.function_arn for source in result.functions.values()}
        # The values a deploy was given are not on the result; the declared defaults are the fallback.
        for name, declaration in (result.translated_template.get("Parameters") or {}).items():
            if isinstance(declaration, dict) and "Default" in declaration:
                self._refs.setdefault(name, str(declaration["Default"]))
        self._pseudo = {
            "AWS::Region": region,
            "AWS::AccountId": account_id,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": result.stack_name,
            "AWS::StackId": result.stack_id,
        }

    def resolve(self, node: Any) -> Any:
        """Return ``node`` with every intrinsic this class understands replaced by its value."""
        if isinstance(node, list):
            return [self.resolve(item) for item in node]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, value),) = node.items()
            if key == "Ref" and isinstance(value, str):
                return self._ref(value, node)
            if key == "Fn::GetAtt":
                parts = value.split(".", 1) if isinstance(value, str) else value
                if isinstance(parts, list) and len(parts) == 2:
                    return self._get_att(str(parts[0]), str(parts[1]), node)
            if key == "Fn::Sub":
                return self._sub(value, node)
            if key == "Fn::Join" and isinstance(value, list) and len(value) == 2:
                separator, items = value[0], self.resolve(value[1])
                if isinstance(items, list) and all(isinstance(item, str) for item in items):
                    return str(separator).join(items)
        return {key: self.resolve(value) for key, value in node.items()}

    def _ref(self, name: str, original: Any) -> Any:
        if name in self._pseudo:
            return self._pseudo[name]
        return self._refs.get(name, original)

    def _get_att(self, logical_id: str, attribute: str, original: Any) -> Any:
        if attribute == "Arn" and logical_id in self._arns:
            return self._arns[logical_id]
        return original

    def _sub(self, value: Any, original: Any) -> Any:
        if isinstance(value, str):
            text, variables = value, {}
        elif isinstance(value, list) and len(value) == 2 and isinstance(value[0], str):
            text, variables = value[0], self.resolve(value[1])
        else:
            return original

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if isinstance(variables, dict) and isinstance(variables.get(name), str):
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                logical_id, attribute = name.split(".", 1)
                resolved = self._get_att(logical_id, attribute, None)
            else:
                resolved = self._ref(name, None)
            return resolved if isinstance(resolved, str) else match.group(0)

        return _SUB_VARIABLE.sub(substitute, text)


class ApiDiscovery:
    """Builds :class:`~localcloud.apigateway.model.Api` objects from one ``DeployResult``."""

    def __init__(self, result: DeployResult, region: str, account_id: str) -> None:
        self._result = result
        self._intrinsics = StackIntrinsics(result, region, account_id)
        self._function_names = {
            source.function_arn: source.function_name for source in result.functions.values()
        }
        self._by_type: dict[str, list[tuple[SkippedResource, dict[str, Any]]]] = {}
        for item in result.skipped:
            self._by_type.setdefault(item.resource_type, []).append((item, self._properties(item)))

    def discover(self) -> list[Api]:
        """Every REST and HTTP API the stack declares (WebSocket APIs are left out)."""
        apis: list[Api] = []
        for item, properties in self._by_type.get(REST_API, []):
            try:
                apis.append(self._rest_api(item, properties))
            except Exception:  # one odd API must not keep the stack's others from being served
                LOG.exception("cannot serve REST API %s", item.logical_id)
        for item, properties in self._by_type.get(HTTP_API, []):
            if str(properties.get("ProtocolType", "HTTP")).upper() != "HTTP":
                LOG.info("%s: only HTTP APIs are served, not %s", item.logical_id, properties["ProtocolType"])
                continue
            try:
                apis.append(self._http_api(item, properties))
            except Exception:
                LOG.exception("cannot serve HTTP API %s", item.logical_id)
        return apis

    # -- shared ----------------------------------------------------------------------------------
    def _properties(self, item: SkippedResource) -> dict[str, Any]:
        properties = item.resolved_properties
        if properties is None:
            properties = item.definition.get("Properties", {}) or {}
        resolved = self._intrinsics.resolve(properties)
        return resolved if isinstance(resolved, dict) else {}

    def _children(self, resource_type: str, key: str, api_id: str) -> list[dict[str, Any]]:
        return [props for _, props in self._by_type.get(resource_type, []) if props.get(key) == api_id]

    def _integration(self, spec: Mapping[str, Any], kind: ApiKind) -> Integration:
        integration_type = str(spec.get("type", "")).lower()
        default_timeout = REST_INTEGRATION_TIMEOUT_S if kind is ApiKind.REST else HTTP_INTEGRATION_TIMEOUT_S
        if integration_type == "mock":
            return _mock_integration(spec)
        if integration_type == "aws" and kind is ApiKind.REST:
            if _INVOCATION_URI.search(str(spec.get("uri", ""))):
                return UnsupportedIntegration("non-proxy Lambda integration")
            return _aws_integration(spec)
        if integration_type != "aws_proxy":
            return UnsupportedIntegration(f"integration type {integration_type or 'none'!r}")
        function = self._function_of(spec.get("uri"))
        if function is None:
            return UnsupportedIntegration(f"integration uri {spec.get('uri')!r}")
        timeout_ms = spec.get("timeoutInMillis")
        payload_format = "1.0" if kind is ApiKind.REST else str(spec.get("payloadFormatVersion", "2.0"))
        return LambdaProxyIntegration(
            function=function,
            payload_format=payload_format,
            timeout_s=float(timeout_ms) / 1000.0 if timeout_ms else default_timeout,
        )

    def _function_of(self, uri: Any) -> str | None:
        """The function an integration URI names (its name when the stack deployed it)."""
        if not isinstance(uri, str):
            return None
        match = _INVOCATION_URI.search(uri)
        arn = match.group("function") if match else uri
        function = _FUNCTION_ARN.match(arn)
        if function is None:
            return None  # e.g. ${stageVariables.fn}: not resolvable at deploy time
        unqualified = arn.rsplit(":", 1)[0] if function.group("qualifier") else arn
        return self._function_names.get(unqualified, function.group("name"))

    def _openapi_routes(self, body: Mapping[str, Any], kind: ApiKind) -> list[Route]:
        routes: list[Route] = []
        for path, operations in (body.get("paths") or {}).items():
            if not isinstance(operations, dict):
                continue
            for operation, spec in operations.items():
                if operation.lower() not in _OPENAPI_METHODS or not isinstance(spec, dict):
                    continue
                method = ANY_METHOD if operation.lower() == OPENAPI_ANY_METHOD else operation.upper()
                integration_spec = spec.get("x-amazon-apigateway-integration")
                if not isinstance(integration_spec, dict):
                    integration: Integration = UnsupportedIntegration("no x-amazon-apigateway-integration")
                else:
                    integration = self._integration(integration_spec, kind)
                if isinstance(integration, AwsIntegration):
                    required = _required_parameters(body, operations, spec)
                    integration = dataclasses.replace(integration, required_parameters=required)
                routes.append(Route(method=method, path=str(path), integration=integration))
        return routes

    # -- REST APIs -------------------------------------------------------------------------------
    def _rest_api(self, item: SkippedResource, properties: dict[str, Any]) -> Api:
        api_id = item.physical_id
        body = _body_of(properties)
        routes = self._openapi_routes(body, ApiKind.REST)
        routes.extend(self._rest_method_routes(api_id))
        binary_types = [*body.get("x-amazon-apigateway-binary-media-types", [])]
        binary_types.extend(properties.get("BinaryMediaTypes", []) or [])
        stages, primary = self._rest_stages(api_id)
        title = properties.get("Name") or (body.get("info") or {}).get("title") or item.logical_id
        return Api(
            api_id=api_id,
            logical_id=item.logical_id,
            stack_name=self._result.stack_name,
            kind=ApiKind.REST,
            title=str(title),
            stages=tuple(stages),
            routes=tuple(routes),
            # CloudFormation writes "/" in media types as "~1".
            binary_media_types=tuple(dict.fromkeys(str(t).replace("~1", "/") for t in binary_types)),
            primary_stage=primary,
        )

    def _rest_method_routes(self, api_id: str) -> list[Route]:
        """Routes spelled out as AWS::ApiGateway::Resource / Method resources."""
        root = f"{api_id}.RootResourceId"
        parents: dict[str, tuple[str, str]] = {}
        for item, props in self._by_type.get(REST_RESOURCE, []):
            if props.get("RestApiId") == api_id:
                parents[item.physical_id] = (str(props.get("ParentId", "")), str(props.get("PathPart", "")))

        def path_of(resource_id: str) -> str | None:
            parts: list[str] = []
            seen: set[str] = set()
            while resource_id != root:
                if resource_id in seen or resource_id not in parents:
                    return None
                seen.add(resource_id)
                resource_id, part = parents[resource_id]
                parts.append(part)
            return "/" + "/".join(reversed(parts))

        routes: list[Route] = []
        for props in self._children(REST_METHOD, "RestApiId", api_id):
            path = path_of(str(props.get("ResourceId", "")))
            if path is None:
                continue
            spec = props.get("Integration") or {}
            integration = self._integration(
                {
                    "type": spec.get("Type", ""),
                    "uri": spec.get("Uri"),
                    "timeoutInMillis": spec.get("TimeoutInMillis"),
                    "httpMethod": spec.get("IntegrationHttpMethod"),
                    "credentials": spec.get("Credentials"),
                    "requestParameters": spec.get("RequestParameters"),
                    "requestTemplates": spec.get("RequestTemplates"),
                    "passthroughBehavior": spec.get("PassthroughBehavior"),
                    "contentHandling": spec.get("ContentHandling"),
                    "responses": {
                        str(r.get("SelectionPattern", "default") or "default"): {
                            "statusCode": r.get("StatusCode", "200"),
                            "responseParameters": r.get("ResponseParameters", {}),
                            "responseTemplates": r.get("ResponseTemplates", {}),
                            "contentHandling": r.get("ContentHandling"),
                        }
                        for r in spec.get("IntegrationResponses", []) or []
                    },
                },
                ApiKind.REST,
            )
            if isinstance(integration, AwsIntegration) and props.get("RequestValidatorId"):
                required = tuple(
                    str(name).removeprefix("method.request.")
                    for name, needed in (props.get("RequestParameters") or {}).items()
                    if str(needed).lower() == "true" and not str(name).startswith("method.request.path.")
                )
                integration = dataclasses.replace(integration, required_parameters=required)
            method = str(props.get("HttpMethod", "")).upper()
            routes.append(Route(method=method, path=path, integration=integration))
        return routes

    def _rest_stages(self, api_id: str) -> tuple[list[Stage], str | None]:
        stages: dict[str, Stage] = {}
        declared: list[str] = []
        for props in self._children(REST_STAGE, "RestApiId", api_id):
            stage = _rest_stage(str(props.get("StageName", "")), props)
            stages[stage.name] = stage
            declared.append(stage.name)
        for props in self._children(REST_DEPLOYMENT, "RestApiId", api_id):
            name = props.get("StageName")
            # A Deployment's StageName creates a stage too (SAM's extra "Stage" stage comes from it).
            if isinstance(name, str) and name and name not in stages:
                stages[name] = _rest_stage(name, props.get("StageDescription") or {})
        primary = declared[0] if declared else next(iter(stages), None)
        return list(stages.values()), primary

    # -- HTTP APIs -------------------------------------------------------------------------------
    def _http_api(self, item: SkippedResource, properties: dict[str, Any]) -> Api:
        api_id = item.physical_id
        body = _body_of(properties)
        routes = self._openapi_routes(body, ApiKind.HTTP)
        routes.extend(self._http_route_resources(api_id))
        if "Target" in properties:
            # Quick create: one $default route to the target function.
            integration = self._integration(
                {"type": "aws_proxy", "uri": properties["Target"], "payloadFormatVersion": "2.0"},
                ApiKind.HTTP,
            )
            routes.append(Route(ANY_METHOD, str(properties.get("RouteKey", DEFAULT_ROUTE)), integration))
        cors_spec = properties.get("CorsConfiguration") or body.get("x-amazon-apigateway-cors")
        stages = [
            _http_stage(str(props.get("StageName", "")), props)
            for props in self._children(HTTP_STAGE, "ApiId", api_id)
        ]
        if "Target" in properties and not stages:
            stages.append(Stage(DEFAULT_STAGE))
        names = [stage.name for stage in stages]
        primary = DEFAULT_STAGE if DEFAULT_STAGE in names else (names[0] if names else None)
        title = properties.get("Name") or (body.get("info") or {}).get("title") or item.logical_id
        return Api(
            api_id=api_id,
            logical_id=item.logical_id,
            stack_name=self._result.stack_name,
            kind=ApiKind.HTTP,
            title=str(title),
            stages=tuple(stages),
            routes=tuple(_http_routes(routes)),
            cors=_cors_rule(cors_spec) if isinstance(cors_spec, dict) else None,
            primary_stage=primary,
        )

    def _http_route_resources(self, api_id: str) -> list[Route]:
        """Routes spelled out as AWS::ApiGatewayV2::Route / Integration resources."""
        integrations = {
            item.physical_id: props
            for item, props in self._by_type.get(HTTP_INTEGRATION, [])
            if props.get("ApiId") == api_id
        }
        routes: list[Route] = []
        for props in self._children(HTTP_ROUTE, "ApiId", api_id):
            route_key = str(props.get("RouteKey", ""))
            target = str(props.get("Target", ""))
            spec = integrations.get(target.removeprefix("integrations/"))
            if spec is None:
                integration: Integration = UnsupportedIntegration(f"route target {target!r}")
            else:
                integration = self._integration(
                    {
                        "type": spec.get("IntegrationType", ""),
                        "uri": spec.get("IntegrationUri"),
                        "payloadFormatVersion": spec.get("PayloadFormatVersion", "2.0"),
                        "timeoutInMillis": spec.get("TimeoutInMillis"),
                    },
                    ApiKind.HTTP,
                )
            if route_key == DEFAULT_ROUTE:
                routes.append(Route(ANY_METHOD, DEFAULT_ROUTE, integration))
            elif " " in route_key:
                method, path = route_key.split(" ", 1)
                routes.append(Route(method.upper(), path, integration))
        return routes


def discover_apis(result: DeployResult, region: str, account_id: str) -> list[Api]:
    """The REST and HTTP APIs declared by one deployed stack."""
    return ApiDiscovery(result, region, account_id).discover()


def _body_of(properties: Mapping[str, Any]) -> dict[str, Any]:
    body = properties.get("Body")
    return body if isinstance(body, dict) else {}


def _http_routes(routes: Iterable[Route]) -> list[Route]:
    # OpenAPI writes an HTTP API's catch-all as the path "$default".
    return [
        Route(ANY_METHOD, DEFAULT_ROUTE, route.integration) if route.path == DEFAULT_ROUTE else route
        for route in routes
    ]


def _pairs(value: Any) -> tuple[tuple[str, str], ...]:
    return tuple((str(k), str(v)) for k, v in value.items()) if isinstance(value, dict) else ()


def _aws_integration(spec: Mapping[str, Any]) -> AwsIntegration:
    """An ``aws`` (AWS service) integration of a REST API."""
    responses: list[IntegrationResponse] = []
    for pattern, response in (spec.get("responses") or {}).items():
        if not isinstance(response, dict):
            continue
        responses.append(
            IntegrationResponse(
                status=int(response.get("statusCode", 200)),
                pattern=None if pattern in ("default", "") else str(pattern),
                parameters=_pairs(response.get("responseParameters")),
                templates=_pairs(response.get("responseTemplates")),
                content_handling=response.get("contentHandling") or None,
            )
        )
    timeout_ms = spec.get("timeoutInMillis")
    return AwsIntegration(
        uri=str(spec.get("uri", "")),
        http_method=str(spec.get("httpMethod") or "POST").upper(),
        credentials=str(spec["credentials"]) if spec.get("credentials") else None,
        request_parameters=_pairs(spec.get("requestParameters")),
        request_templates=_pairs(spec.get("requestTemplates")),
        passthrough_behavior=str(spec.get("passthroughBehavior") or "WHEN_NO_MATCH").upper(),
        content_handling=spec.get("contentHandling") or None,
        responses=tuple(responses),
        timeout_s=float(timeout_ms) / 1000.0 if timeout_ms else REST_INTEGRATION_TIMEOUT_S,
    )


def _required_parameters(
    body: Mapping[str, Any], path_item: Mapping[str, Any], operation: Mapping[str, Any]
) -> tuple[str, ...]:
    """The header / query parameters a request validator with validateRequestParameters demands."""
    validators = body.get("x-amazon-apigateway-request-validators") or {}
    name = operation.get("x-amazon-apigateway-request-validator") or body.get(
        "x-amazon-apigateway-request-validator"
    )
    validator = validators.get(name) if isinstance(validators, dict) and name else None
    if not isinstance(validator, dict) or not validator.get("validateRequestParameters"):
        return ()
    declared = [*(path_item.get("parameters") or []), *(operation.get("parameters") or [])]
    locations = {"header": "header", "query": "querystring"}
    return tuple(
        f"{locations[str(p['in'])]}.{p['name']}"
        for p in declared
        if isinstance(p, dict) and p.get("required") and p.get("in") in locations and "name" in p
    )


def _mock_integration(spec: Mapping[str, Any]) -> MockIntegration:
    responses = spec.get("responses") or {}
    response: dict[str, Any] = responses.get("default") or next(iter(responses.values()), {})
    headers: list[tuple[str, str]] = []
    for target, value in (response.get("responseParameters") or {}).items():
        name = str(target).removeprefix("method.response.header.")
        text = str(value)
        # Only static values ('...') can be served; mappings from the integration have nothing to read.
        if name != target and len(text) >= 2 and text.startswith("'") and text.endswith("'"):
            headers.append((name, text[1:-1]))
    templates = response.get("responseTemplates") or {}
    template = str(templates.get("application/json", next(iter(templates.values()), "")) if templates else "")
    # A template with VTL in it cannot be rendered here; SAM's CORS templates are plain "{}".
    body = "" if ("$" in template or "#" in template) else template.strip()
    return MockIntegration(status=int(response.get("statusCode", 200)), headers=tuple(headers), body=body)


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        # An intrinsic nothing could resolve: that limit is not applied.
        LOG.warning("ignoring the throttling limit %r", value)
        return None


def _throttle(settings: Mapping[str, Any]) -> ThrottleLimit | None:
    rate = _number(settings["ThrottlingRateLimit"]) if "ThrottlingRateLimit" in settings else None
    burst = _number(settings["ThrottlingBurstLimit"]) if "ThrottlingBurstLimit" in settings else None
    if rate is None and burst is None:
        return None
    return ThrottleLimit(
        rate=rate if rate is not None else _ACCOUNT_RATE_LIMIT,
        burst=int(burst) if burst is not None else _ACCOUNT_BURST_LIMIT,
    )


def _variables(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def _rest_stage(name: str, props: Mapping[str, Any]) -> Stage:
    """A REST stage from Stage properties or a Deployment's StageDescription."""
    default = _throttle(props)
    route_throttles: dict[str, ThrottleLimit] = {}
    for setting in props.get("MethodSettings", []) or []:
        limit = _throttle(setting)
        if limit is None:
            continue
        resource_path = str(setting.get("ResourcePath", "/*"))
        method = str(setting.get("HttpMethod", "*")).upper()
        if resource_path == "/*" and method == "*":
            default = limit
            continue
        # MethodSettings write the resource path with "/" escaped as "~1" after a leading "/".
        path = resource_path[1:].replace("~1", "/") if resource_path != "/*" else "*"
        route_throttles[f"{method} {path}"] = limit
    return Stage(
        name=name,
        variables=_variables(props.get("Variables")),
        default_throttle=default,
        route_throttles=route_throttles,
    )


def _http_stage(name: str, props: Mapping[str, Any]) -> Stage:
    route_settings = props.get("RouteSettings") or {}
    route_throttles = {
        str(key): limit
        for key, settings in route_settings.items()
        if isinstance(settings, dict) and (limit := _throttle(settings)) is not None
    }
    return Stage(
        name=name,
        variables=_variables(props.get("StageVariables")),
        default_throttle=_throttle(props.get("DefaultRouteSettings") or {}),
        route_throttles=route_throttles,
    )


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    if isinstance(value, list):
        return tuple(str(item) for item in value)
    return ()


def _cors_rule(spec: Mapping[str, Any]) -> CorsRule:
    """An HTTP API CORS rule from ``CorsConfiguration`` (PascalCase) or ``x-amazon-apigateway-cors``."""
    lowered = {str(key).lower(): value for key, value in spec.items()}
    max_age = lowered.get("maxage")
    return CorsRule(
        allow_origins=_strings(lowered.get("alloworigins")),
        allow_methods=tuple(m.upper() for m in _strings(lowered.get("allowmethods"))),
        allow_headers=tuple(h.lower() for h in _strings(lowered.get("allowheaders"))),
        expose_headers=_strings(lowered.get("exposeheaders")),
        max_age=int(max_age) if max_age is not None else None,
        allow_credentials=str(lowered.get("allowcredentials", False)).lower() == "true",
    )
