"""REST API ``aws`` integrations: API Gateway calling an AWS service API with no function in between.

The steps, in API Gateway's order:

1. **Request validation** (``validateRequestParameters``): missing required headers / query
   parameters are a 400 ``Missing required request parameters: [...]``.
2. **Request body**: the mapping template for the request's ``Content-Type`` (``application/json``
   when absent) is rendered; with no matching template ``passthroughBehavior`` decides
   (``WHEN_NO_MATCH`` passes the body through, ``WHEN_NO_TEMPLATES`` only when none are defined,
   ``NEVER`` refuses with 415). A binary body (its type is one of the API's binary media types) is
   passed through as bytes, or Base64-encoded with ``contentHandling: CONVERT_TO_TEXT``; a text body
   is Base64-decoded with ``CONVERT_TO_BINARY``.
3. **Request parameters**: ``integration.request.{path,querystring,header}.<name>`` from
   ``method.request.*``, ``'static'`` values, ``context.*`` and ``stageVariables.*``; path
   parameters fill the ``{name}`` placeholders of the URI's path.
4. **The call**, signed with SigV4 and sent to localcloud's one AWS endpoint. Path-style URIs
   (``s3:path/{bucket}/{key}``) use the integration's HTTP method; action-style ones
   (``dynamodb:action/Query``) are JSON-protocol calls (``X-Amz-Target``).
5. **Credentials**: the integration's role is checked, not only recorded: the action and resource
   the call needs (``s3:PutObject`` on ``arn:aws:s3:::bucket/key``, ``dynamodb:Query`` on the
   table, ...) are evaluated against the role's inline and attached policies with moto's IAM
   policy evaluation; a call the role does not allow gets AWS's 403 ``AccessDenied`` from the
   "service". Calls whose action or resource cannot be derived are let through (logged).
6. **Response**: the integration response whose ``selectionPattern`` matches the service's status
   code (else the default one), its parameters (``integration.response.header.*``, ``'static'``),
   its template (rendered with ``$input`` being the service's body; ``$context.responseOverride``
   honoured) and ``contentHandling``.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from localcloud.apigateway.mapping import MappingTemplateError, ResponseOverride, render
from localcloud.apigateway.messages import GatewayRequest, GatewayResponse
from localcloud.apigateway.model import AwsIntegration, IntegrationResponse

LOG = logging.getLogger(__name__)

_URI = re.compile(
    r"^arn:[^:]+:apigateway:(?P<region>[^:]*):(?P<service>[^:]+):(?P<style>path|action)/(?P<rest>.*)$"
)
# JSON-protocol services reached with action-style URIs: X-Amz-Target prefix and content type.
_JSON_TARGETS = {
    "dynamodb": ("DynamoDB_20120810", "application/x-amz-json-1.0"),
    "kinesis": ("Kinesis_20131202", "application/x-amz-json-1.1"),
    "sqs": ("AmazonSQS", "application/x-amz-json-1.0"),
    "events": ("AWSEvents", "application/x-amz-json-1.1"),
    "states": ("AWSStepFunctions", "application/x-amz-json-1.0"),
    "logs": ("Logs_20140328", "application/x-amz-json-1.1"),
}
_S3_ACTIONS = {
    "GET": "s3:GetObject",
    "HEAD": "s3:GetObject",
    "PUT": "s3:PutObject",
    "DELETE": "s3:DeleteObject",
}
_S3_ACCESS_DENIED = b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"


@dataclass(frozen=True)
class ServiceCall:
    """The HTTP call an integration makes, before signing."""

    service: str
    method: str
    path: str  # already percent-encoded, starting with "/"
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes
    action: str | None  # the IAM action the call needs, when it can be derived
    resource: str | None  # the IAM resource, when it can be derived


@dataclass(frozen=True)
class _Scope:
    """What mapping templates and parameter mappings read for one request."""

    params: dict[str, dict[str, str]]
    context: dict[str, Any]
    stage_variables: dict[str, str]

    def render(self, template: str, body: str) -> tuple[str, ResponseOverride]:
        return render(
            template,
            body=body,
            params=self.params,
            context=self.context,
            stage_variables=self.stage_variables,
        )


@dataclass(frozen=True)
class ServiceResponse:
    """What the service answered."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


class CredentialsChecker:
    """Evaluates an integration role's policies with moto's IAM policy engine (moto runs in-process)."""

    def __init__(self, account_id: str) -> None:
        self._account_id = account_id

    def allows(self, role_arn: str, action: str, resource: str) -> bool:
        """Whether the role's policies permit ``action`` on ``resource`` (an explicit deny wins)."""
        # Imported here: moto is heavy and only needed once an integration with credentials runs.
        from moto.iam.access_control import IAMPolicy, PermissionResult  # noqa: PLC0415
        from moto.iam.models import iam_backends  # noqa: PLC0415

        role_name = role_arn.rsplit("/", 1)[-1]
        backend = iam_backends[self._account_id]["aws"]
        try:
            inline = [
                backend.get_role_policy(role_name, name)[1] for name in backend.list_role_policies(role_name)
            ]
            # moto's evaluator takes an inline document as JSON text, a managed policy as its object.
            documents: list[Any] = [doc if isinstance(doc, str) else json.dumps(doc) for doc in inline]
            attached, _ = backend.list_attached_role_policies(role_name)
        except Exception:  # no such role: nothing is allowed
            LOG.info("integration credentials %s: no such role", role_arn)
            return False
        documents.extend(attached)
        permitted = False
        for document in documents:
            result = IAMPolicy(document).is_action_permitted(action, resource)
            if result == PermissionResult.DENIED:
                return False
            permitted = permitted or result == PermissionResult.PERMITTED
        return permitted


class AwsServiceIntegration:
    """Runs ``aws`` integrations against one AWS endpoint (localcloud's)."""

    def __init__(self, endpoint_url: str, region: str, account_id: str) -> None:
        self._endpoint = endpoint_url.rstrip("/")
        self._region = region
        self._account_id = account_id
        self._credentials = Credentials("localcloud", "localcloud")
        self._checker = CredentialsChecker(account_id)

    def handle(
        self,
        integration: AwsIntegration,
        request: GatewayRequest,
        *,
        path_parameters: Mapping[str, str],
        context: dict[str, Any],
        stage_variables: Mapping[str, str],
        binary_media_types: tuple[str, ...],
    ) -> GatewayResponse:
        """Answer one method request through the integration."""
        params = _method_params(request, path_parameters)
        scope = _Scope(params, context, dict(stage_variables))
        missing = [name for name in integration.required_parameters if not _has_param(params, name)]
        if missing:
            names = ", ".join(name.split(".", 1)[1] for name in missing)
            return GatewayResponse.json_message(400, f"Missing required request parameters: [{names}]")
        content_type = (request.header("Content-Type") or "application/json").split(";")[0].strip().lower()
        binary = _is_binary(content_type, binary_media_types)
        try:
            body = self._request_body(integration, request, scope, binary=binary)
        except _UnsupportedMediaTypeError:
            return GatewayResponse.json_message(415, "Unsupported Media Type")
        except MappingTemplateError as exc:
            LOG.info("%s: request mapping template failed: %s", context.get("resourcePath"), exc)
            return GatewayResponse.json_message(500, "Internal server error")
        call = self._call_for(integration, request, scope, body)
        if call is None:
            LOG.warning("unsupported AWS integration URI %r", integration.uri)
            return GatewayResponse.json_message(500, "Internal server error")
        response = self._send(integration, call)
        return self._method_response(integration, request, response, scope, binary_media_types)

    # -- request ---------------------------------------------------------------------------------
    def _request_body(
        self,
        integration: AwsIntegration,
        request: GatewayRequest,
        scope: _Scope,
        *,
        binary: bool,
    ) -> bytes:
        content_type = (request.header("Content-Type") or "application/json").split(";")[0].strip().lower()
        templates = dict(integration.request_templates)
        template = templates.get(content_type)
        if template is None:
            behaviour = integration.passthrough_behavior
            if behaviour == "NEVER" or (behaviour == "WHEN_NO_TEMPLATES" and templates):
                raise _UnsupportedMediaTypeError
        handling = integration.content_handling
        if binary:
            # Mapping templates are not applied to a binary payload; it passes through (or as Base64).
            return base64.b64encode(request.body) if handling == "CONVERT_TO_TEXT" else request.body
        if handling == "CONVERT_TO_BINARY":
            return base64.b64decode(request.body)
        if not template:
            return request.body
        text = request.body.decode("utf-8", errors="replace")
        output, _ = scope.render(template, text)
        return output.encode("utf-8")

    def _call_for(
        self,
        integration: AwsIntegration,
        request: GatewayRequest,
        scope: _Scope,
        body: bytes,
    ) -> ServiceCall | None:
        match = _URI.match(integration.uri)
        if match is None:
            return None
        service, style, rest = match.group("service"), match.group("style"), match.group("rest")
        subdomain = ""
        if "." in service:  # e.g. "mybucket.s3": a virtual-hosted bucket
            subdomain, service = service.rsplit(".", 1)
        mapped = _mapped_parameters(integration, scope)
        headers = dict(mapped["header"])
        query = list(mapped["querystring"].items())
        if style == "action":
            action_name, _, action_query = rest.partition("&")
            if service in _JSON_TARGETS:
                prefix, json_type = _JSON_TARGETS[service]
                headers["X-Amz-Target"] = f"{prefix}.{action_name}"
                headers["Content-Type"] = json_type
                return ServiceCall(
                    service=service,
                    method="POST",
                    path="/",
                    query=query,
                    headers=headers,
                    body=body,
                    action=f"{service}:{action_name}",
                    resource=self._json_resource(service, body),
                )
            # Query-protocol services (SNS, STS, ...): the action and the body as a form.
            query = [("Action", action_name), *_form_pairs(action_query), *query]
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
            return ServiceCall(service, "POST", "/", query, headers, body, f"{service}:{action_name}", None)
        path = _fill_path(rest, mapped["path"])
        if subdomain and service == "s3":
            path = f"{quote(subdomain)}/{path}"
        headers.setdefault("Content-Type", request.header("Content-Type") or "application/json")
        action = resource = None
        if service == "s3":
            bucket, _, key = _unquote_path(path).partition("/")
            if key:
                action, resource = _S3_ACTIONS.get(integration.http_method), f"arn:aws:s3:::{bucket}/{key}"
            else:
                action, resource = "s3:ListBucket", f"arn:aws:s3:::{bucket}"
        return ServiceCall(
            service, integration.http_method, "/" + path, query, headers, body, action, resource
        )

    def _json_resource(self, service: str, body: bytes) -> str | None:
        if service != "dynamodb":
            return None
        try:
            table = json.loads(body or b"{}").get("TableName")
        except (ValueError, AttributeError):
            return None
        if not isinstance(table, str):
            return None
        return f"arn:aws:dynamodb:{self._region}:{self._account_id}:table/{table}"

    # -- the call --------------------------------------------------------------------------------
    def _send(self, integration: AwsIntegration, call: ServiceCall) -> ServiceResponse:
        if integration.credentials:
            if call.action and call.resource:
                if not self._checker.allows(integration.credentials, call.action, call.resource):
                    LOG.info("%s may not %s on %s", integration.credentials, call.action, call.resource)
                    return _access_denied(call)
            else:
                LOG.info(
                    "integration credentials %s recorded, not checked for %s",
                    integration.credentials,
                    integration.uri,
                )
        url = self._endpoint + call.path + (f"?{urlencode(call.query)}" if call.query else "")
        aws_request = AWSRequest(method=call.method, url=url, data=call.body, headers=call.headers)
        signer = S3SigV4Auth if call.service == "s3" else SigV4Auth
        signer(self._credentials, call.service, self._region).add_auth(aws_request)
        prepared = aws_request.prepare()
        http_request = urllib.request.Request(
            prepared.url,
            data=call.body if call.method not in ("GET", "HEAD") else None,
            headers=dict(prepared.headers.items()),
            method=call.method,
        )
        try:
            with urllib.request.urlopen(http_request, timeout=integration.timeout_s) as answer:
                return ServiceResponse(answer.status, list(answer.headers.items()), answer.read())
        except urllib.error.HTTPError as error:
            return ServiceResponse(error.code, list(error.headers.items()), error.read())

    # -- response --------------------------------------------------------------------------------
    def _method_response(
        self,
        integration: AwsIntegration,
        request: GatewayRequest,
        response: ServiceResponse,
        scope: _Scope,
        binary_media_types: tuple[str, ...],
    ) -> GatewayResponse:
        chosen = _select_response(integration.responses, response.status)
        if chosen is None:
            # No integration response configured: API Gateway answers 500 ("Execution failed").
            LOG.info("%s: no integration response for status %s", integration.uri, response.status)
            return GatewayResponse.json_message(500, "Internal server error")
        service_headers = {name.lower(): value for name, value in response.headers}
        headers: list[tuple[str, str]] = []
        for target, source in chosen.parameters:
            name = target.removeprefix("method.response.header.")
            value = _response_parameter(source, service_headers)
            if value is not None and name != target:
                headers.append((name, value))
        templates = dict(chosen.templates)
        accept = (request.header("Accept") or "").split(",")[0].split(";")[0].strip().lower()
        template = (
            templates.get(accept) or templates.get("application/json") or next(iter(templates.values()), None)
        )
        status = chosen.status
        body = response.body
        if chosen.content_handling == "CONVERT_TO_TEXT":
            body = base64.b64encode(body)
        elif chosen.content_handling == "CONVERT_TO_BINARY":
            body = base64.b64decode(body)
        elif template and not _is_binary(service_headers.get("content-type", ""), binary_media_types):
            text = body.decode("utf-8", errors="replace")
            try:
                output, override = scope.render(template, text)
            except MappingTemplateError as exc:
                LOG.info("%s: response mapping template failed: %s", integration.uri, exc)
                return GatewayResponse.json_message(500, "Internal server error")
            body = output.encode("utf-8")
            status = override.status or status
            headers.extend(override.headers.items())
        if not any(name.lower() == "content-type" for name, _ in headers):
            headers.append(
                (
                    "Content-Type",
                    "application/json"
                    if template
                    else service_headers.get("content-type", "application/json"),
                )
            )
        return GatewayResponse(status=status, headers=headers, body=body)


class _UnsupportedMediaTypeError(Exception):
    pass


def _method_params(request: GatewayRequest, path_parameters: Mapping[str, str]) -> dict[str, dict[str, str]]:
    return {
        "path": dict(path_parameters),
        "querystring": dict(request.query_pairs()),
        "header": {name: value for name, value in request.headers},
    }


def _has_param(params: dict[str, dict[str, str]], name: str) -> bool:
    location, _, key = name.partition(".")
    values = params.get(location, {})
    if location == "header":
        return key.lower() in {k.lower() for k in values}
    return key in values


def _is_binary(content_type: str, binary_media_types: tuple[str, ...]) -> bool:
    content_type = content_type.split(";", maxsplit=1)[0].strip().lower()
    for declared in binary_media_types:
        media_type = declared.lower()
        if media_type in ("*/*", content_type):
            return True
        if media_type.endswith("/*") and content_type.startswith(media_type[:-1]):
            return True
    return False


def _mapped_parameters(integration: AwsIntegration, scope: _Scope) -> dict[str, dict[str, str]]:
    mapped: dict[str, dict[str, str]] = {"path": {}, "querystring": {}, "header": {}}
    for target, source in integration.request_parameters:
        parts = target.split(".", 3)
        if len(parts) != 4 or parts[0] != "integration" or parts[2] not in mapped:
            continue
        value = _request_parameter(source, scope.params, scope.context, scope.stage_variables)
        if value is not None:
            mapped[parts[2]][parts[3]] = value
    return mapped


def _request_parameter(
    source: str,
    params: dict[str, dict[str, str]],
    context: dict[str, Any],
    stage_variables: Mapping[str, str],
) -> str | None:
    if len(source) >= 2 and source.startswith("'") and source.endswith("'"):
        return source[1:-1]
    if source.startswith("method.request."):
        location, _, name = source.removeprefix("method.request.").partition(".")
        location = location.removeprefix("multivalue")
        values = params.get(location, {})
        if location == "header":
            return next((v for k, v in values.items() if k.lower() == name.lower()), None)
        return values.get(name)
    if source.startswith("stageVariables."):
        return stage_variables.get(source.removeprefix("stageVariables."))
    if source.startswith("context."):
        value: Any = context
        for part in source.removeprefix("context.").split("."):
            value = value.get(part) if isinstance(value, dict) else None
        return str(value) if value is not None else None
    return None


def _response_parameter(source: str, service_headers: Mapping[str, str]) -> str | None:
    if len(source) >= 2 and source.startswith("'") and source.endswith("'"):
        return source[1:-1]
    if source.startswith("integration.response.header."):
        return service_headers.get(source.removeprefix("integration.response.header.").lower())
    return None


def _form_pairs(text: str) -> list[tuple[str, str]]:
    return [
        (key, value) for key, _, value in (part.partition("=") for part in text.split("&") if "=" in part)
    ]


def _fill_path(template: str, values: Mapping[str, str]) -> str:
    def fill(match: re.Match[str]) -> str:
        # A greedy {name+} keeps its slashes; any other value is one segment.
        name = match.group(1)
        greedy = name.endswith("+")
        value = values.get(name.rstrip("+"), "")
        return quote(value, safe="/" if greedy else "")

    return re.sub(r"\{([^}]+)\}", fill, template)


def _unquote_path(path: str) -> str:
    from urllib.parse import unquote  # noqa: PLC0415

    return unquote(path)


def _select_response(responses: tuple[IntegrationResponse, ...], status: int) -> IntegrationResponse | None:
    default = None
    for response in responses:
        if response.pattern is None:
            default = response
        elif re.fullmatch(response.pattern, str(status)):
            return response
    return default


def _access_denied(call: ServiceCall) -> ServiceResponse:
    if call.service == "s3":
        body = b"<?xml version='1.0' encoding='UTF-8'?>" + _S3_ACCESS_DENIED
        return ServiceResponse(403, [("Content-Type", "application/xml")], body)
    message = {
        "__type": "AccessDeniedException",
        "message": f"not authorized to perform: {call.action} on resource: {call.resource}",
    }
    return ServiceResponse(
        400, [("Content-Type", "application/x-amz-json-1.0")], json.dumps(message).encode()
    )
