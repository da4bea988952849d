"""template.yaml: lints clean, translates with aws-sam-translator, deploys into localcloud (moto).

Resources moto's CloudFormation cannot create are named here explicitly; localcloud serves the API
Gateway and IoT ones itself and resolves the secret before the stack.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from localcloud.deploy import translate

from localcloud import LocalCloud
from tests.support.tables import TEMPLATE, load_template

pytestmark = pytest.mark.integration

# Resources the stack declares that moto cannot create (and why they are fine to leave to localcloud).
EXPECTED_SKIPPED = {
    "AWS::ApiGateway::RestApi",  # served by localcloud's API Gateway front door
    "AWS::ApiGateway::Deployment",
    "AWS::ApiGateway::Stage",
    "AWS::IoT::TopicRule",  # executed by localcloud's IoT rule engine
    "AWS::Cognito::IdentityPool",  # browsers' credentials for AWS IoT; locally MQTT is anonymous
    "AWS::Cognito::IdentityPoolRoleAttachment",
    "AWS::SecretsManager::Secret",  # created by localcloud before the stack (dynamic references)
    "AWS::SecretsManager::RotationSchedule",  # RotateSecret by localcloud, after the stack
    "AWS::CloudWatch::Alarm",  # created by localcloud with PutMetricAlarm
    # The viewer page's hosting: locally `alleycat up` serves the same files at viewer_url.
    "AWS::CloudFront::Distribution",
    "AWS::CloudFront::OriginAccessControl",
    "AWS::S3::BucketPolicy",
}


def _statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "Effect" in node and "Action" in node:
                found.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(template["Resources"])
    return found


def test_cfn_lint_is_clean() -> None:
    lint = shutil.which("cfn-lint", path=str(Path(sys.executable).parent)) or "cfn-lint"
    result = subprocess.run([lint, str(TEMPLATE)], capture_output=True, text=True, timeout=180, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_translates_and_grants_no_wildcard_actions() -> None:
    template = load_template()
    template["Globals"]["Function"]["CodeUri"] = "s3://artifacts/alleycat.zip"  # what `sam package` does
    translated = translate(template, {}, "us-east-1")
    types = {r["Type"] for r in translated["Resources"].values()}
    assert {"AWS::Lambda::Function", "AWS::Lambda::EventSourceMapping", "AWS::Kinesis::Stream"} <= types
    statements = _statements(translated)
    assert statements
    for statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if statement["Effect"] == "Deny":
            # A deny grants nothing; the only one is the viewer bucket's TLS-only guard, which must
            # cover every action to mean anything.
            assert statement["Condition"] == {"Bool": {"aws:SecureTransport": False}}, statement
            continue
        assert all("*" not in action for action in actions), statement
    publish = [s for s in statements if s["Action"] == "iot:Publish"]
    assert publish and all("topic/${TopicPrefix}/" in json.dumps(s["Resource"]) for s in publish)


def test_deploys_into_localcloud(tmp_path: Path) -> None:
    with LocalCloud() as cloud:
        result = cloud.deploy(TEMPLATE, "alleycat")
        assert result.status == "CREATE_COMPLETE"
        assert {s.resource_type for s in result.skipped} == EXPECTED_SKIPPED
        for key in ("StreamName", "TableName", "ApiUrl", "DeadLetterQueueUrl", "IotTopicPrefix"):
            assert result.outputs.get(key), key
        # moto's CloudFormation ignores StreamEncryption; AWS applies it (checked by cfn-lint's schema).
        assert (
            load_template()["Resources"]["RaceStream"]["Properties"]["StreamEncryption"]["EncryptionType"]
            == "KMS"
        )
        table = cloud.client("dynamodb").describe_table(TableName=result.outputs["TableName"])["Table"]
        assert {i["IndexName"] for i in table["GlobalSecondaryIndexes"]} == {"ByClass", "ByStatus"}
        mappings = cloud.client("lambda").list_event_source_mappings()["EventSourceMappings"]
        kinesis_mapping = next(m for m in mappings if ":kinesis:" in m["EventSourceArn"])
        assert kinesis_mapping["TumblingWindowInSeconds"] == 5
        assert kinesis_mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert kinesis_mapping["BisectBatchOnFunctionError"] is True
        assert kinesis_mapping["DestinationConfig"]["OnFailure"]["Destination"].endswith(
            result.outputs["DeadLetterQueueUrl"].rsplit("/", 1)[-1]
        )
        aggregator = next(f for f in result.functions.values() if "Aggregator" in f.logical_id)
        env = cloud.client("lambda").get_function_configuration(FunctionName=aggregator.function_name)
        assert env["Environment"]["Variables"]["TABLE_NAME"] == result.outputs["TableName"]
        assert env["Environment"]["Variables"]["FAILURE_QUEUE_URL"] == result.outputs["DeadLetterQueueUrl"]
