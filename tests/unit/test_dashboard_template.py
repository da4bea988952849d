"""The dashboard and alarms in template.yaml refer only to resources and metrics that exist.

The dashboard body is a !Sub'd JSON string, so CloudFormation (and cfn-lint) cannot tell when a
widget names a resource that was renamed or a metric nobody emits: the chart is just empty. These
tests resolve every ``${...}`` to the template's parameters and logical ids, and check every metric
against the metrics its service publishes (for the application's own namespace: the metrics the
handlers in ``consumers/`` actually emit), and every dimension against a resource of the right type.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from localcloud.dashboard.body import expand_metric_rows

from tests.support.tables import TEMPLATE, load_template

ROOT = Path(__file__).resolve().parents[2]

# The metrics each AWS service publishes that this dashboard may draw (AWS documentation's lists).
AWS_METRICS: dict[str, set[str]] = {
    "AWS/Kinesis": {
        "IncomingRecords",
        "IncomingBytes",
        "WriteProvisionedThroughputExceeded",
        "ReadProvisionedThroughputExceeded",
        "PutRecords.Bytes",
        "PutRecords.Latency",
        "PutRecords.Success",
        "PutRecords.TotalRecords",
        "PutRecords.SuccessfulRecords",
        "PutRecords.FailedRecords",
        "PutRecords.ThrottledRecords",
        "PutRecord.Bytes",
        "PutRecord.Latency",
        "PutRecord.Success",
        "GetRecords.Bytes",
        "GetRecords.Records",
        "GetRecords.Latency",
        "GetRecords.Success",
        "GetRecords.IteratorAgeMilliseconds",
    },
    "AWS/Lambda": {
        "Invocations",
        "Duration",
        "Errors",
        "Throttles",
        "ConcurrentExecutions",
        "IteratorAge",
        "DeadLetterErrors",
        "DestinationDeliveryFailures",
    },
    "AWS/DynamoDB": {
        "ConsumedReadCapacityUnits",
        "ConsumedWriteCapacityUnits",
        "ThrottledRequests",
        "ReadThrottleEvents",
        "WriteThrottleEvents",
        "SuccessfulRequestLatency",
        "SystemErrors",
        "UserErrors",
    },
    "AWS/SQS": {
        "ApproximateNumberOfMessagesVisible",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateAgeOfOldestMessage",
        "NumberOfMessagesSent",
        "NumberOfMessagesReceived",
        "NumberOfMessagesDeleted",
    },
}

# Dimension name -> (resource type it names, attribute of that resource the value must come from).
# None as the attribute means the resource's Ref.
DIMENSION_RESOURCES: dict[str, tuple[str, str | None]] = {
    "StreamName": ("AWS::Kinesis::Stream", None),
    "FunctionName": ("AWS::Serverless::Function", None),
    "TableName": ("AWS::DynamoDB::Table", None),
    "QueueName": ("AWS::SQS::Queue", "QueueName"),
}
DYNAMODB_OPERATIONS = {"PutItem", "UpdateItem", "GetItem", "BatchGetItem", "BatchWriteItem", "Query", "Scan"}

_REFERENCE = re.compile(r"\$\{([A-Za-z0-9:]+)(?:\.([A-Za-z0-9]+))?\}")
_MARKER = re.compile(r"^@ref:([A-Za-z0-9:]+)(?:\.([A-Za-z0-9]+))?$")


def emitted_application_metrics() -> set[str]:
    """Metric names the handlers pass to ``metrics.add_metric(name=...)``."""
    names: set[str] = set()
    for path in (ROOT / "consumers").rglob("*.py"):
        names.update(re.findall(r"add_metric\(\s*name=\"([A-Za-z0-9_.]+)\"", path.read_text()))
    return names


def _globals_env(template: dict[str, Any]) -> dict[str, Any]:
    env: dict[str, Any] = template["Globals"]["Function"]["Environment"]["Variables"]
    return env


def resolve_body(template: dict[str, Any], logical_id: str = "Dashboard") -> tuple[dict[str, Any], list[str]]:
    """The dashboard's body as JSON with each ``${X}`` replaced by a checkable marker.

    Resource references become ``"@ref:Logical[.Attr]"`` strings (they always sit inside JSON
    quotes); Number parameters become their default so numeric annotations stay numbers. Returns
    the body and the problems found while resolving (unknown names).
    """
    sub = template["Resources"][logical_id]["Properties"]["DashboardBody"]["Sub"]
    assert isinstance(sub, str), "the body is one !Sub string (no variable map)"
    parameters = template.get("Parameters", {})
    resources = template["Resources"]
    problems: list[str] = []

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("AWS::"):
            return {"AWS::Region": "us-east-1", "AWS::StackName": "stack", "AWS::AccountId": "1"}.get(
                name, name
            )
        if name in parameters:
            if parameters[name].get("Type") == "Number":
                return str(parameters[name].get("Default", 1))
            return f"@ref:{name}"
        if name not in resources:
            problems.append(f"${{{match.group(0)[2:-1]}}} names no parameter or resource of the template")
        return match.group(0).replace("${", "@ref:").rstrip("}")

    text = _REFERENCE.sub(replace, sub)
    return json.loads(text), problems


def _check_dimension(name: str, value: Any, template: dict[str, Any], service: str, where: str) -> list[str]:
    resources = template["Resources"]
    if name == "service":
        return (
            [] if value == service else [f"{where}: service={value!r}, the functions' service is {service!r}"]
        )
    if name == "Operation":
        return [] if value in DYNAMODB_OPERATIONS else [f"{where}: unknown DynamoDB operation {value!r}"]
    if name not in DIMENSION_RESOURCES:
        return [f"{where}: dimension {name!r} is not one this dashboard knows how to check"]
    expected_type, expected_attribute = DIMENSION_RESOURCES[name]
    marker = _MARKER.match(str(value))
    if marker is None:
        return [f"{where}: {name}={value!r} is hard-coded instead of referring to a stack resource"]
    logical, attribute = marker.group(1), marker.group(2)
    if logical not in resources:
        return [f"{where}: {name} refers to {logical!r}, which is not a resource of the template"]
    problems = []
    if resources[logical]["Type"] != expected_type:
        problems.append(
            f"{where}: {name} refers to {logical} ({resources[logical]['Type']}), not {expected_type}"
        )
    if attribute != expected_attribute:
        wanted = f"{logical}.{expected_attribute}" if expected_attribute else logical
        problems.append(f"{where}: {name} should be ${{{wanted}}}")
    return problems


def dashboard_problems(template: dict[str, Any], logical_id: str = "Dashboard") -> list[str]:
    """Everything wrong with the dashboard's references; empty when all is well."""
    body, problems = resolve_body(template, logical_id)
    service = _globals_env(template)["POWERTOOLS_SERVICE_NAME"]
    namespace = _globals_env(template)["POWERTOOLS_METRICS_NAMESPACE"]
    known = dict(AWS_METRICS) | {namespace: emitted_application_metrics()}
    for index, widget in enumerate(body["widgets"]):
        if widget["type"] != "metric":
            continue
        properties = widget["properties"]
        where = f"widget {index} ({properties.get('title', '?')})"
        ids = {options["id"] for _, options in expand_metric_rows(properties["metrics"]) if "id" in options}
        for fields, options in expand_metric_rows(properties["metrics"]):
            if "expression" in options:
                used = set(re.findall(r"\b([a-z][A-Za-z0-9_]*)\b", options["expression"])) - {"e"}
                missing = {u for u in used if u not in ids and not u.isupper()}
                problems += [f"{where}: expression uses unknown id {m!r}" for m in sorted(missing)]
                continue
            ns, metric_name, *dimensions = fields
            if metric_name not in known.get(ns, set()):
                problems.append(f"{where}: {ns} {metric_name} is not a metric that namespace has")
            if len(dimensions) % 2:
                problems.append(f"{where}: {metric_name} has an odd dimension list {dimensions}")
            for dim_name, dim_value in zip(dimensions[::2], dimensions[1::2], strict=False):
                problems += _check_dimension(dim_name, dim_value, template, service, where)
    return problems


def _timeout(template: dict[str, Any], logical_id: str) -> int:
    properties = template["Resources"][logical_id]["Properties"]
    return int(properties.get("Timeout", template["Globals"]["Function"]["Timeout"]))


# -- the real template ------------------------------------------------------------------------------


def test_dashboard_refers_only_to_existing_resources_and_metrics() -> None:
    assert dashboard_problems(load_template()) == []


def test_dashboard_covers_the_stack() -> None:
    body, _ = resolve_body(load_template())
    drawn = {
        (fields[0], fields[1], fields[3] if len(fields) > 3 else None)
        for widget in body["widgets"]
        if widget["type"] == "metric"
        for fields, options in expand_metric_rows(widget["properties"]["metrics"])
        if "expression" not in options
    }
    functions = ["AggregatorFunction", "PublisherFunction", "RaceCloserFunction", "ApiFunction"]
    for function in functions:
        for metric in ("Invocations", "Duration", "Errors", "Throttles", "ConcurrentExecutions"):
            assert ("AWS/Lambda", metric, f"@ref:{function}") in drawn, (function, metric)
    for function in functions[:2]:
        assert ("AWS/Lambda", "IteratorAge", f"@ref:{function}") in drawn
    for metric in (
        "IncomingRecords",
        "IncomingBytes",
        "WriteProvisionedThroughputExceeded",
        "ReadProvisionedThroughputExceeded",
        "PutRecords.SuccessfulRecords",
        "GetRecords.IteratorAgeMilliseconds",
    ):
        assert ("AWS/Kinesis", metric, "@ref:RaceStream") in drawn, metric
    for metric in ("ConsumedWriteCapacityUnits", "ConsumedReadCapacityUnits", "ThrottledRequests"):
        assert ("AWS/DynamoDB", metric, "@ref:RacesTable") in drawn, metric
    assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "@ref:FailureQueue.QueueName") in drawn
    application = {name for ns, name, _ in drawn if ns == "Alleycat"}
    assert application == emitted_application_metrics(), "every application metric is drawn"


def test_annotations_are_the_shard_limits_and_the_function_timeouts() -> None:
    template = load_template()
    sub = template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Sub"]
    # ShardCount x 1,000 records/s and ShardCount x 1 MiB/s, whatever ShardCount is deployed with.
    assert '"value": ${ShardCount}000' in sub and '"value": ${ShardCount},' in sub
    body, _ = resolve_body(template)
    checked = 0
    for widget in body["widgets"]:
        properties = widget.get("properties", {})
        for annotation in properties.get("annotations", {}).get("horizontal", []):
            assert isinstance(annotation["value"], int | float), annotation
        if widget["type"] == "metric" and properties["title"].endswith("duration"):
            (fields, _), *_ = expand_metric_rows(properties["metrics"])
            logical = _MARKER.match(fields[3]).group(1)  # type: ignore[union-attr]
            (annotation,) = properties["annotations"]["horizontal"]
            assert annotation["value"] == _timeout(template, logical) * 1000, logical
            checked += 1
    assert checked == 4


def test_alarms_watch_existing_resources_and_notify_the_topic() -> None:
    template = load_template()
    resources = template["Resources"]
    alarms = {k: v["Properties"] for k, v in resources.items() if v["Type"] == "AWS::CloudWatch::Alarm"}
    watched = set()
    for logical, alarm in alarms.items():
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}], logical
        stats = (
            [alarm]
            if "MetricName" in alarm
            else [m["MetricStat"]["Metric"] for m in alarm["Metrics"] if "MetricStat" in m]
        )
        for stat in stats:
            assert stat["MetricName"] in AWS_METRICS[stat["Namespace"]], logical
            for dimension in stat["Dimensions"]:
                value = dimension["Value"]
                if dimension["Name"] == "Operation":
                    assert value in DYNAMODB_OPERATIONS, logical
                    continue
                target = value.get("Ref") or value.get("GetAtt", "").split(".")[0]
                assert resources[target]["Type"] == DIMENSION_RESOURCES[dimension["Name"]][0], logical
                watched.add((stat["MetricName"], target))
    assert ("IteratorAge", "AggregatorFunction") in watched
    assert ("WriteProvisionedThroughputExceeded", "RaceStream") in watched
    assert ("ThrottledRequests", "RacesTable") in watched
    assert ("ApproximateNumberOfMessagesVisible", "FailureQueue") in watched
    assert {f for m, f in watched if m == "Errors"} == {
        k for k, v in resources.items() if v["Type"] == "AWS::Serverless::Function"
    }
    assert resources["AlarmTopic"]["Type"] == "AWS::SNS::Topic"
    assert template["Outputs"]["AlarmTopicArn"]["Value"] == {"Ref": "AlarmTopic"}


# -- the checks catch mistakes ------------------------------------------------------------------------


def _mutated(old: str, new: str) -> dict[str, Any]:
    template = copy.deepcopy(load_template())
    properties = template["Resources"]["Dashboard"]["Properties"]
    sub = properties["DashboardBody"]["Sub"]
    assert old in sub
    properties["DashboardBody"]["Sub"] = sub.replace(old, new, 1)
    return template


@pytest.mark.parametrize(
    ("old", "new", "complaint"),
    [
        ("${PublisherFunction}", "${PublisherFunctionGone}", "PublisherFunctionGone"),
        ("${RaceStream}", "${RacesTable}", "not AWS::Kinesis::Stream"),
        ("${FailureQueue.QueueName}", "${FailureQueue}", "FailureQueue.QueueName"),
        ('"IncomingRecords"', '"IncomingRecordz"', "IncomingRecordz"),
        ('"RecordsAggregated"', '"RecordsAggregatedd"', "RecordsAggregatedd"),
        ('"service", "alleycat"', '"service", "other"', "service='other'"),
        ('"${AggregatorFunction}"', '"my-function"', "hard-coded"),
        ("m1 / PERIOD(m1)", "m9 / PERIOD(m9)", "unknown id 'm9'"),
    ],
)
def test_a_broken_reference_is_reported(old: str, new: str, complaint: str) -> None:
    problems = dashboard_problems(_mutated(old, new))
    assert any(complaint in problem for problem in problems), problems


def test_the_template_file_is_the_one_checked() -> None:
    assert TEMPLATE.name == "template.yaml" and "AWS::CloudWatch::Dashboard" in TEMPLATE.read_text()
