"""alleycat's targets: the local stack's local.json and a deployed stack's CloudFormation outputs."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from moto import mock_aws

from alleycat.target import TargetError, aws_target, local_target, signed_mqtt_url

OUTPUTS = {
    "StreamName": "races-stream",
    "TableName": "races-table",
    "ApiUrl": "https://abc.execute-api.eu-west-1.amazonaws.com/v1",
    "IotTopicPrefix": "alleycat",
}


def test_local_target_reads_the_contract(tmp_path: Path) -> None:
    info = {
        "endpoint_url": "http://127.0.0.1:4566",
        "region": "us-east-1",
        "api_url": "http://127.0.0.1:5000/restapis/abc/v1/",
        "mqtt_url": "ws://127.0.0.1:5001/mqtt",
        "dashboard_url": "http://127.0.0.1:5002/",
        "stacks": {"alleycat": {"outputs": OUTPUTS}},
    }
    path = tmp_path / "local.json"
    path.write_text(json.dumps(info))
    target = local_target(path)
    assert target.is_local and target.api_url == "http://127.0.0.1:5000/restapis/abc/v1"
    assert target.stream_name == "races-stream" and target.standings_topic(7) == "alleycat/races/7/standings"
    assert signed_mqtt_url(target) == "ws://127.0.0.1:5001/mqtt"


def test_missing_or_broken_local_json_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(TargetError, match="alleycat up"):
        local_target(tmp_path / "nope.json")
    broken = tmp_path / "local.json"
    broken.write_text("{")
    with pytest.raises(TargetError, match="unreadable"):
        local_target(broken)


def test_aws_target_reads_stack_outputs_and_signs_mqtt() -> None:
    with mock_aws():
        template = {
            "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
            "Outputs": {key: {"Value": value} for key, value in OUTPUTS.items()},
        }
        boto3.client("cloudformation", region_name="eu-west-1").create_stack(
            StackName="alleycat", TemplateBody=json.dumps(template)
        )
        target = aws_target("alleycat", region="eu-west-1")
        assert not target.is_local and target.table_name == "races-table"
        assert (
            target.mqtt_url is not None
            and target.mqtt_url.startswith("wss://")
            and target.mqtt_url.endswith("/mqtt")
        )
        url = urlsplit(signed_mqtt_url(target))
        query = parse_qs(url.query)
        assert url.scheme == "wss" and url.path == "/mqtt"
        assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
        assert query["X-Amz-Credential"][0].endswith("/eu-west-1/iotdevicegateway/aws4_request")
        assert len(query["X-Amz-Signature"][0]) == 64
        # The session token is appended after signing, as AWS IoT expects.
        assert url.query.endswith("X-Amz-Security-Token=testing")

        with pytest.raises(TargetError, match="cannot read stack"):
            aws_target("missing", region="eu-west-1")
