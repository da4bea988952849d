"""Least privilege in template.yaml, read from the template as CloudFormation gets it (after the SAM
transform): no wildcard actions, no wildcard resources where the action can be scoped, no policy
attached to nothing, no KMS alias ARN as a Resource (AWS matches key ARNs there, so it grants
nothing), viewers' MQTT client ids bound to their Cognito identity, and every API route validated by
API Gateway before the function runs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from localcloud.deploy import translate

from tests.support.tables import load_template

# Actions that have no resource-level permissions, so "*" is the only Resource AWS accepts.
UNSCOPABLE_ACTIONS = frozenset(
    {
        "iot:DescribeEndpoint",
        "cloudwatch:PutMetricData",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "xray:GetSamplingRules",
        "xray:GetSamplingTargets",
    }
)
# In a !Sub, "${!x}" is how a literal "${x}" (here an IAM policy variable) is written.
VIEWER_CLIENT = "client/${!cognito-identity.amazonaws.com:sub}"


@pytest.fixture(scope="module")
def translated() -> dict[str, Any]:
    template = load_template()
    template["Globals"]["Function"]["CodeUri"] = "s3://artifacts/alleycat.zip"  # what `sam package` does
    resources: dict[str, Any] = translate(template, {}, "us-east-1")["Resources"]
    return resources


def _documents(resources: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(resource id, policy document) of every identity and IoT policy in the template."""
    for name, resource in resources.items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                yield name, policy["PolicyDocument"]
        elif resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IoT::Policy"):
            yield name, props.get("PolicyDocument", {})


def _statements(resources: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, document in _documents(resources):
        statements = document.get("Statement", [])
        for statement in statements if isinstance(statements, list) else [statements]:
            if statement.get("Effect") == "Allow":
                yield name, statement


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _references(node: Any, name: str) -> bool:
    """Whether ``node`` refers to resource ``name`` (Ref, GetAtt or ${name} in a Sub)."""
    text = json.dumps(node)
    return (
        any(f'"{k}": "{name}' in text for k in ("Ref", "Fn::GetAtt"))
        or f"${{{name}" in text
        or (f'["{name}",' in text)
    )


def test_no_wildcard_actions(translated: dict[str, Any]) -> None:
    for name, statement in _statements(translated):
        for action in _listed(statement.get("Action", [])):
            assert "*" not in action, (name, statement)


def test_wildcard_resources_only_for_actions_aws_cannot_scope(translated: dict[str, Any]) -> None:
    for name, statement in _statements(translated):
        if "*" in _listed(statement.get("Resource", [])):
            assert set(_listed(statement["Action"])) <= UNSCOPABLE_ACTIONS, (name, statement)


def test_no_kms_alias_arn_as_a_resource(translated: dict[str, Any]) -> None:
    for name, statement in _statements(translated):
        if any(str(a).startswith("kms:") for a in _listed(statement.get("Action", []))):
            assert ":alias/" not in json.dumps(statement.get("Resource")), (name, statement)


def test_every_policy_is_attached_to_something(translated: dict[str, Any]) -> None:
    for name, resource in translated.items():
        props = resource.get("Properties", {})
        if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            assert any(props.get(k) for k in ("Roles", "Users", "Groups")), f"{name} is attached to nothing"
        elif resource["Type"] == "AWS::IoT::Policy":
            attached = any(
                other["Type"] == "AWS::IoT::PolicyPrincipalAttachment"
                and _references(other.get("Properties", {}).get("PolicyName"), name)
                for other in translated.values()
            )
            assert attached, f"{name} is attached to nothing"


def test_viewer_client_ids_are_bound_to_the_cognito_identity(translated: dict[str, Any]) -> None:
    connects = [
        (name, statement)
        for name, statement in _statements(translated)
        if "iot:Connect" in _listed(statement["Action"])
    ]
    assert connects
    for name, statement in connects:
        for resource in _listed(statement["Resource"]):
            assert VIEWER_CLIENT in json.dumps(resource), (name, statement)
    # Viewers subscribe to and receive standings and class announcements, and do nothing else.
    viewer = next(name for name, _ in connects)
    actions = {a for name, s in _statements(translated) if name == viewer for a in _listed(s["Action"])}
    assert actions == {"iot:Connect", "iot:Subscribe", "iot:Receive"}


def test_every_api_route_is_validated_by_api_gateway(translated: dict[str, Any]) -> None:
    apis = [r for r in translated.values() if r["Type"] == "AWS::ApiGateway::RestApi"]
    assert apis
    for api in apis:
        body = api["Properties"]["Body"]
        validators = body.get("x-amazon-apigateway-request-validators", {})
        for path, methods in body["paths"].items():
            for method, operation in methods.items():
                if method == "options":  # CORS preflight: a mock integration, no function behind it
                    continue
                chosen = operation.get("x-amazon-apigateway-request-validator")
                assert chosen in validators and validators[chosen]["validateRequestParameters"], (
                    path,
                    method,
                )
                declared = {p["name"] for p in operation.get("parameters", []) if p.get("in") == "path"}
                wanted = {part[1:-1] for part in path.split("/") if part.startswith("{")}
                assert declared == wanted, (path, method, declared)
