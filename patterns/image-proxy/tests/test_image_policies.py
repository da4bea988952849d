"""Least privilege in the pattern's template, read as CloudFormation gets it (after the SAM
transform): no wildcard actions, no wildcard resources where AWS can scope the action, one action on
one kind of resource per integration role, and a topic only the raw bucket of this account may use."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from localcloud.deploy import translate
from localcloud.templates import load_template

TEMPLATE = Path(__file__).resolve().parents[1] / "template.yaml"
# Actions without resource-level permissions: "*" is the only Resource IAM accepts for them.
UNSCOPABLE_ACTIONS = frozenset({"rekognition:DetectLabels"})
INTEGRATION_ROLES = {
    "UploadRole": "s3:PutObject",
    "ListRole": "dynamodb:Scan",
    "ReadRole": "dynamodb:GetItem",
    "ThumbnailReadRole": "s3:GetObject",
}


@pytest.fixture(scope="module")
def resources() -> dict[str, Any]:
    template = load_template(TEMPLATE)
    # What `sam package` does: code locations become S3 URIs.
    for resource in template["Resources"].values():
        for key in ("CodeUri", "ContentUri"):
            if key in resource.get("Properties", {}):
                resource["Properties"][key] = "s3://artifacts/image-proxy.zip"
    translated: dict[str, Any] = translate(template, {}, "us-east-1")["Resources"]
    return translated


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statements(resources: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(role, Allow statement) of every inline policy; both branches of an Fn::If."""
    for name, resource in resources.items():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        for policy in resource["Properties"].get("Policies", []):
            for statement in _listed(policy["PolicyDocument"]["Statement"]):
                options = statement["Fn::If"][1:] if "Fn::If" in statement else [statement]
                for option in options:
                    if isinstance(option, dict) and option.get("Effect") == "Allow":
                        yield name, option


def test_no_wildcard_actions(resources):
    statements = list(_statements(resources))
    assert statements
    for name, statement in statements:
        for action in _listed(statement["Action"]):
            assert "*" not in action, (name, statement)


def test_wildcard_resources_only_for_actions_aws_cannot_scope(resources):
    for name, statement in _statements(resources):
        if "*" in _listed(statement["Resource"]):
            assert set(_listed(statement["Action"])) <= UNSCOPABLE_ACTIONS, (name, statement)


def test_each_integration_role_has_exactly_its_one_action(resources):
    for role, action in INTEGRATION_ROLES.items():
        statements = [s for name, s in _statements(resources) if name == role]
        assert [a for s in statements for a in _listed(s["Action"])] == [action], role
        trust = resources[role]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert [s["Principal"] for s in trust] == [{"Service": "apigateway.amazonaws.com"}]


def test_only_the_raw_bucket_of_this_account_may_publish_to_the_topic(resources):
    (statement,) = resources["UploadTopicPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
    assert statement["Action"] == "sns:Publish"
    assert "aws:SourceArn" in statement["Condition"]["ArnEquals"]
    assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    bucket_name = resources["RawBucket"]["Properties"]["BucketName"]["Fn::Sub"]
    assert statement["Condition"]["ArnEquals"]["aws:SourceArn"]["Fn::Sub"].endswith(bucket_name)


def test_every_function_has_its_own_failure_destination(resources):
    destinations = {
        resources[name]["Properties"]["FunctionName"]["Ref"]: config["Properties"]["DestinationConfig"][
            "OnFailure"
        ]
        for name, config in resources.items()
        if config["Type"] == "AWS::Lambda::EventInvokeConfig"
    }
    assert set(destinations) == {"ThumbnailerFunction", "AnalyzerFunction"}
    queues = [str(d["Destination"]) for d in destinations.values()]
    assert len(set(queues)) == 2
