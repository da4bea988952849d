"""consumers/kcl/template.yaml and its Dockerfile: what can be checked without deploying them.

The template passes cfn-lint; its roles use no wildcard action and a "*" resource only where AWS
offers no resource-level permission (then with a condition); the task role reaches exactly the
stream, the KCL's three tables, the races table and the failure queue the parameters name; the
service scales on the stream's iterator age; the Dockerfile's build inputs exist in the repository.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.tables import load_template

ROOT = Path(__file__).resolve().parents[2]
KCL = ROOT / "consumers" / "kcl"
TEMPLATE = KCL / "template.yaml"
DOCKERFILE = KCL / "Dockerfile"

# Actions AWS authorises only against Resource "*".
STAR_RESOURCE_ACTIONS = {"ecr:GetAuthorizationToken", "cloudwatch:PutMetricData"}


def _arn(table: str) -> dict[str, str]:
    return {"Sub": f"arn:${{AWS::Partition}}:dynamodb:${{AWS::Region}}:${{AWS::AccountId}}:table/{table}"}


KCL_TABLES = [
    _arn("${ApplicationName}"),
    _arn("${ApplicationName}-CoordinatorState"),
    _arn("${ApplicationName}-WorkerMetricStats"),
]
RACES_TABLE = [_arn("${RacesTableName}"), _arn("${RacesTableName}/index/*")]


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statements(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        for policy in props.get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                yield f"{name}/{statement.get('Sid', '?')}", statement


def _task_role(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    policies = template["Resources"]["TaskRole"]["Properties"]["Policies"]
    return {s["Sid"]: s for p in policies for s in p["PolicyDocument"]["Statement"]}


def test_cfn_lint_passes() -> None:
    cfn_lint = ROOT / ".venv" / "bin" / "cfn-lint"
    result = subprocess.run(
        [str(cfn_lint), str(TEMPLATE)], capture_output=True, text=True, timeout=240, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_template_has_policies_to_check(template: dict[str, Any]) -> None:
    assert len(list(_statements(template))) >= 10


def test_no_action_contains_a_wildcard(template: dict[str, Any]) -> None:
    offenders = [
        (where, action)
        for where, statement in _statements(template)
        for action in _as_list(statement.get("Action", []))
        if "*" in action
    ]
    assert offenders == []
    assert not [where for where, statement in _statements(template) if "NotAction" in statement]
    assert not [where for where, statement in _statements(template) if statement["Effect"] != "Allow"]


def test_star_resources_only_where_aws_requires_them(template: dict[str, Any]) -> None:
    for where, statement in _statements(template):
        if "*" in _as_list(statement["Resource"]):
            assert set(_as_list(statement["Action"])) <= STAR_RESOURCE_ACTIONS, where


def test_metrics_are_limited_to_the_kcl_namespace(template: dict[str, Any]) -> None:
    metrics = _task_role(template)["KclMetrics"]
    assert metrics["Action"] == "cloudwatch:PutMetricData"
    # The KCL's MultiLangDaemon publishes under the application name.
    assert metrics["Condition"] == {"StringEquals": {"cloudwatch:namespace": {"Ref": "ApplicationName"}}}


def test_the_task_role_reaches_exactly_the_parameters_resources(template: dict[str, Any]) -> None:
    role = _task_role(template)
    assert set(role) == {
        "ReadTheStream",
        "ReadThroughItsConsumer",
        "KclTables",
        "KclLeaseOwnerIndex",
        "RacesTable",
        "ParkPoison",
        "KclMetrics",
    }
    assert role["ReadTheStream"]["Resource"] == {"Ref": "StreamArn"}
    assert role["ReadThroughItsConsumer"]["Resource"] == {"Sub": "${StreamArn}/consumer/${ApplicationName}:*"}
    assert role["KclTables"]["Resource"] == KCL_TABLES
    assert role["KclLeaseOwnerIndex"]["Resource"] == _arn("${ApplicationName}/index/*")
    assert _as_list(role["KclLeaseOwnerIndex"]["Action"]) == ["dynamodb:Query"]
    assert role["RacesTable"]["Resource"] == RACES_TABLE
    queue_arn, names = role["ParkPoison"]["Resource"]["Sub"]
    assert queue_arn.endswith(":sqs:${AWS::Region}:${AWS::AccountId}:${QueueName}")
    assert names == {"QueueName": {"Select": [4, {"Split": ["/", {"Ref": "FailureQueueUrl"}]}]}}
    assert role["ParkPoison"]["Action"] == "sqs:SendMessage"


def test_races_table_actions_are_the_stores_calls(template: dict[str, Any]) -> None:
    """The store's boto3 calls (leaderboard/adapters/dynamodb.py), as IAM actions, and no more."""
    source = (ROOT / "leaderboard" / "adapters" / "dynamodb.py").read_text()
    calls = set(re.findall(r"_ddb\.(\w+)\(", source) + re.findall(r"_ddb\.(\w+),", source))
    expected = {"dynamodb:" + "".join(part.title() for part in call.split("_")) for call in calls}
    assert set(_task_role(template)["RacesTable"]["Action"]) == expected


def test_the_kcl_creates_only_its_own_tables(template: dict[str, Any]) -> None:
    for where, statement in _statements(template):
        if "dynamodb:CreateTable" in _as_list(statement["Action"]):
            assert statement["Resource"] == KCL_TABLES, where
        assert "dynamodb:DeleteTable" not in _as_list(statement["Action"]), where


def test_the_workers_run_with_the_template_roles(template: dict[str, Any]) -> None:
    task = template["Resources"]["TaskDefinition"]["Properties"]
    assert task["TaskRoleArn"] == {"GetAtt": "TaskRole.Arn"}
    assert task["ExecutionRoleArn"] == {"GetAtt": "ExecutionRole.Arn"}
    (container,) = task["ContainerDefinitions"]
    env = {e["Name"]: e["Value"] for e in container["Environment"]}
    # The container's entry point requires these (consumers/kcl/container.py).
    from consumers.kcl.container import REQUIRED  # noqa: PLC0415

    assert set(REQUIRED) <= set(env)
    assert container["LogConfiguration"]["Options"]["awslogs-group"] == {"Ref": "LogGroup"}
    assert "RetentionInDays" in template["Resources"]["LogGroup"]["Properties"]


def test_autoscaling_follows_the_streams_iterator_age(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    target = resources["ScalableTarget"]["Properties"]
    assert target["ScalableDimension"] == "ecs:service:DesiredCount"
    policies = {
        name for name, r in resources.items() if r["Type"] == "AWS::ApplicationAutoScaling::ScalingPolicy"
    }
    assert policies
    alarms = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    triggered = {a["Ref"] for alarm in alarms for a in alarm["AlarmActions"]}
    assert triggered == policies
    for alarm in alarms:
        assert alarm["Namespace"] == "AWS/Kinesis"
        assert alarm["MetricName"] == "GetRecords.IteratorAgeMilliseconds"
        assert alarm["Dimensions"][0]["Value"] == {"Select": [1, {"Split": ["/", {"Ref": "StreamArn"}]}]}
    for name in policies:
        assert resources[name]["Properties"]["ScalingTargetId"] == {"Ref": "ScalableTarget"}


def test_the_dockerfile_copies_files_that_exist() -> None:
    text = DOCKERFILE.read_text()
    sources = [
        source
        for line in text.splitlines()
        if line.startswith("COPY ") and "--from" not in line
        for source in line.split()[1:-1]
    ]
    assert {"pyproject.toml", "uv.lock", "localcloud/pyproject.toml", "consumers"} <= set(sources)
    assert [s for s in sources if not (ROOT / s).exists()] == []
    assert "uv sync --locked --no-dev" in text
    assert "openjdk-17" in text
    assert "FROM python:3.11" in text
    assert '"consumers.kcl.container"' in text
    # The packages the processor imports ship in the image.
    for package in ("consumers", "leaderboard", "streamformat"):
        assert package in sources


def test_the_entry_point_writes_the_local_daemons_properties_for_polling() -> None:
    from consumers.kcl.container import worker_config  # noqa: PLC0415
    from consumers.settings import ConfigurationError  # noqa: PLC0415

    env = {
        "KCL_APPLICATION_NAME": "alleycat-kcl",
        "STREAM_NAME": "races",
        "STREAM_ARN": "arn:aws:kinesis:eu-west-1:123456789012:stream/races",
        "TABLE_NAME": "races-table",
        "FAILURE_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/failures",
        "AWS_REGION": "eu-west-1",
    }
    properties = worker_config(env).properties("w1")
    for line in (
        "applicationName = alleycat-kcl",
        "streamName = races",
        "regionName = eu-west-1",
        "retrievalMode = POLLING",
        "workerId = w1",
    ):
        assert line + "\n" in properties
    # AWS's endpoints: no endpoint override, metrics left on.
    assert "Endpoint" not in properties
    assert "metricsLevel" not in properties
    with pytest.raises(ConfigurationError, match="STREAM_ARN"):
        worker_config({k: v for k, v in env.items() if k != "STREAM_ARN"})


def test_the_dashboard_charts_the_kcls_key_metrics_from_its_namespace(template: dict[str, Any]) -> None:
    from alleycat.dashboard import KCL_METRICS, kcl_dashboard_body  # noqa: PLC0415

    # Given the template's dashboard body, its variables filled in as CloudFormation (or the local
    # stack) fills them
    sub = template["Resources"]["KclDashboard"]["Properties"]["DashboardBody"]["Sub"]
    assert sub[1] == {"StreamName": {"Select": [1, {"Split": ["/", {"Ref": "StreamArn"}]}]}}
    body = json.loads(kcl_dashboard_body("alleycat-kcl", "races", "eu-west-1"))
    rows = [row for widget in body["widgets"] for row in widget["properties"].get("metrics", [])]
    # Then lease count, records processed and millis behind latest are charted, by the Operation
    # dimension alone (what the workers publish), under the application's namespace
    assert {(row[1], row[3]) for row in rows if row[0] == "alleycat-kcl"} == set(KCL_METRICS)
    assert all(row[2] == "Operation" and len(row) == 5 for row in rows if row[0] == "alleycat-kcl")
    stream_age = ["AWS/Kinesis", "GetRecords.IteratorAgeMilliseconds", "StreamName", "races"]
    assert stream_age in [row[:4] for row in rows]
    assert {w["properties"]["region"] for w in body["widgets"] if w["type"] == "metric"} == {"eu-west-1"}
    # ... and the workers publish exactly that dimension, locally to localcloud's CloudWatch
    from consumers.kcl.daemon import WorkerConfig  # noqa: PLC0415

    config = WorkerConfig("app", "races", "arn", "table", "queue", endpoint_url="http://127.0.0.1:4566")
    properties = config.properties("w1")
    assert "metricsEnabledDimensions = Operation\n" in properties
    assert "cloudWatchClient.endpointOverride = http://127.0.0.1:4566\n" in properties
    assert "metricsLevel" not in properties
