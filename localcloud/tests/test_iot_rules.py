"""Topic rules: MQTT publishes → Kinesis (moto server), error actions to SQS, disabled rules, Lambda."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from localcloud.aws import make_client
from localcloud.deploy import DeployResult, SkippedResource
from localcloud.invocation import FunctionNotFoundError, InvocationResult
from localcloud.iot import HANDLED_BY, LocalIot, RuleStats
from localcloud.iot.client import MqttClient
from moto.server import ThreadedMotoServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


class RecordingInvoker:
    """An in-process Invoker: remembers events, fails on demand."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def invoke(self, function: str, event: Any) -> InvocationResult:
        if function.endswith(":missing"):
            raise FunctionNotFoundError(function)
        self.events.append((function, event))
        if event.get("boom"):
            return InvocationResult("req", {"errorMessage": "boom", "errorType": "ValueError"}, "Unhandled")
        return InvocationResult("req", None)


@pytest.fixture
def invoker() -> RecordingInvoker:
    return RecordingInvoker()


@pytest.fixture
def iot(endpoint: str, invoker: RecordingInvoker) -> Iterator[LocalIot]:
    with LocalIot(endpoint_url=endpoint, invoker=invoker) as local:
        yield local


@pytest.fixture
def names() -> str:
    """A unique suffix: the moto server is shared by the module."""
    return uuid.uuid4().hex[:8]


def create_stream(endpoint: str, name: str, shards: int = 1) -> None:
    kinesis = make_client("kinesis", endpoint)
    kinesis.create_stream(StreamName=name, ShardCount=shards)
    kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1})


def read_stream(endpoint: str, name: str) -> list[tuple[str, bytes]]:
    """Every record in the stream, shard by shard, as (partition key, data)."""
    kinesis = make_client("kinesis", endpoint)
    records = []
    for shard in kinesis.list_shards(StreamName=name)["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=name, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            page = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
            records += [(r["PartitionKey"], r["Data"]) for r in page["Records"]]
            if not page["Records"]:
                break
            iterator = page.get("NextShardIterator")
    return records


def wait_for_stats(iot: LocalIot, rule: str, done, timeout: float = 10.0) -> RuleStats:
    """Poll a rule's counters until ``done(stats)``; MQTT publishes reach the rules asynchronously."""
    deadline = time.monotonic() + timeout
    while True:
        iot.wait_idle(timeout)
        stats = iot.stats()[rule]
        if done(stats) or time.monotonic() > deadline:
            return stats
        time.sleep(0.02)


def create_queue(endpoint: str, name: str) -> str:
    return make_client("sqs", endpoint).create_queue(QueueName=name)["QueueUrl"]


def receive_all(endpoint: str, queue_url: str, expected: int) -> list[dict[str, Any]]:
    sqs = make_client("sqs", endpoint)
    bodies: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10
    while len(bodies) < expected and time.monotonic() < deadline:
        answer = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        bodies += [json.loads(m["Body"]) for m in answer.get("Messages", [])]
    return bodies


def test_mqtt_publishes_land_in_kinesis_with_partition_keys_from_the_payload(iot, endpoint, names):
    # Given a stream and a rule routing race positions into it, keyed by race
    stream = f"positions-{names}"
    create_stream(endpoint, stream, shards=2)
    info = iot.add_rule(
        "positions",
        {
            "Sql": "SELECT * FROM 'races/+/positions'",
            "Actions": [
                {
                    "Kinesis": {
                        "StreamName": stream,
                        "PartitionKey": "${raceId}",
                        "RoleArn": "arn:aws:iam::1:role/r",
                    }
                }
            ],
        },
    )
    assert info.actions == (f"KinesisAction({stream})",)

    # When devices publish JSON over MQTT (TCP and WebSocket) and one message goes elsewhere
    sent = [{"raceId": f"race-{i % 2}", "riderId": i, "speed": 10 + i} for i in range(6)]
    with MqttClient(iot.mqtt_url, "bike-tcp") as tcp, MqttClient(iot.ws_url, "bike-ws") as ws:
        for index, position in enumerate(sent):
            client = tcp if index % 2 else ws
            client.publish(f"races/{position['raceId']}/positions", json.dumps(position), qos=1)
        tcp.publish("races/race-0/laps", b'{"raceId": "race-0"}', qos=1)
        stats = wait_for_stats(iot, "positions", lambda s: s.actions_succeeded >= 6)

    # Then each position is exactly one record, keyed by its raceId, data unchanged
    records = read_stream(endpoint, stream)
    assert sorted((key, json.loads(data)["riderId"]) for key, data in records) == sorted(
        (p["raceId"], p["riderId"]) for p in sent
    )
    assert all(data == json.dumps(json.loads(data)).encode() for _, data in records)
    assert stats == RuleStats(received=6, matched=6, actions_succeeded=6)


def test_records_of_one_key_keep_publish_order(iot, endpoint, names):
    stream = f"ordered-{names}"
    create_stream(endpoint, stream)
    iot.add_rule(
        "ordered",
        {
            "Sql": "SELECT seq FROM 'seq/#'",
            "Actions": [{"Kinesis": {"StreamName": stream, "PartitionKey": "${topic(2)}"}}],
        },
    )
    for seq in range(100):
        iot.publish(f"seq/{seq % 3}", json.dumps({"seq": seq, "noise": "x"}).encode())
    assert iot.wait_idle(20)

    records = read_stream(endpoint, stream)
    by_key: dict[str, list[int]] = {}
    for key, data in records:
        by_key.setdefault(key, []).append(json.loads(data)["seq"])
    assert {k: len(v) for k, v in by_key.items()} == {"0": 34, "1": 33, "2": 33}
    assert all(v == sorted(v) for v in by_key.values())
    # SELECT of named fields sends only those fields
    assert all(set(json.loads(data)) == {"seq"} for _, data in records)


def test_failed_kinesis_action_sends_the_aws_error_message_to_the_error_action(iot, endpoint, names):
    # Given a rule whose stream does not exist and whose error action is an SQS queue
    errors_url = create_queue(endpoint, f"rule-errors-{names}")
    iot.add_rule(
        "broken",
        {
            "Sql": "SELECT * FROM 'broken/+'",
            "Actions": [{"Kinesis": {"StreamName": f"missing-{names}", "PartitionKey": "${topic()}"}}],
            "ErrorAction": {"Sqs": {"QueueUrl": errors_url, "UseBase64": False, "RoleArn": "arn"}},
        },
    )

    # When a device publishes
    with MqttClient(iot.mqtt_url, "bike-9") as device:
        device.publish("broken/1", b'{"n": 1}', qos=1)
        stats = wait_for_stats(iot, "broken", lambda s: s.error_actions_succeeded >= 1)

    # Then the queue gets AWS's error message: rule, topic, client, original payload, failure
    (error,) = receive_all(endpoint, errors_url, 1)
    assert error["ruleName"] == "broken"
    assert error["topic"] == "broken/1"
    assert error["clientId"] == "bike-9"
    assert base64.b64decode(error["base64OriginalPayload"]) == b'{"n": 1}'
    (failure,) = error["failures"]
    assert failure["failedAction"] == "KinesisAction"
    assert failure["failedResource"] == f"missing-{names}"
    assert "ResourceNotFoundException" in failure["errorMessage"]
    assert stats.actions_failed == 1 and stats.lost == 0
    assert iot.failures == []


def test_an_undefined_partition_key_fails_the_action_not_silently(iot, endpoint, names):
    stream = f"keys-{names}"
    create_stream(endpoint, stream)
    errors_url = create_queue(endpoint, f"key-errors-{names}")
    iot.add_rule(
        "keys",
        {
            "Sql": "SELECT * FROM 'keys'",
            "Actions": [{"Kinesis": {"StreamName": stream, "PartitionKey": "${raceId}"}}],
            "ErrorAction": {"Sqs": {"QueueUrl": errors_url}},
        },
    )
    iot.publish("keys", b'{"raceId": "r1"}')
    iot.publish("keys", b'{"other": 1}')
    iot.publish("keys", b"\x00binary")
    assert iot.wait_idle()

    assert [key for key, _ in read_stream(endpoint, stream)] == ["r1"]
    errors = receive_all(endpoint, errors_url, 2)
    assert sorted(base64.b64decode(e["base64OriginalPayload"]) for e in errors) == [
        b"\x00binary",
        b'{"other": 1}',
    ]
    assert all("empty" in e["failures"][0]["errorMessage"] for e in errors)
    assert all(e["clientId"] == "n/a" for e in errors)


def test_failures_without_an_error_action_are_counted_and_kept(iot, names):
    iot.add_rule(
        "lossy",
        {"Sql": "SELECT * FROM 'lossy'", "Actions": [{"Kinesis": {"StreamName": f"none-{names}"}}]},
    )
    iot.publish("lossy", b"{}")
    assert iot.wait_idle()
    assert iot.stats()["lossy"].lost == 1
    (failed,) = iot.failures
    assert (failed.rule_name, failed.topic, failed.payload) == ("lossy", "lossy", b"{}")
    assert failed.failures[0].failed_action == "KinesisAction"


def test_a_failing_error_action_is_counted_too(iot, names):
    iot.add_rule(
        "doubly",
        {
            "Sql": "SELECT * FROM 'doubly'",
            "Actions": [{"Kinesis": {"StreamName": f"none-{names}"}}],
            "ErrorAction": {"Sqs": {"QueueUrl": f"http://127.0.0.1/123456789012/none-{names}"}},
        },
    )
    iot.publish("doubly", b"{}")
    assert iot.wait_idle()
    stats = iot.stats()["doubly"]
    assert (stats.actions_failed, stats.error_actions_failed, stats.lost) == (1, 1, 1)
    assert "SQS" in (iot.failures[0].error_action_error or "")


@pytest.mark.parametrize("disabled", [True, "true"])
def test_disabled_rules_do_nothing(iot, endpoint, names, disabled):
    stream = f"disabled-{names}"
    create_stream(endpoint, stream)
    info = iot.add_rule(
        "off",
        {
            "Sql": "SELECT * FROM 'off/#'",
            "RuleDisabled": disabled,
            "Actions": [{"Kinesis": {"StreamName": stream, "PartitionKey": "k"}}],
        },
    )
    assert info.disabled
    iot.publish("off/1", b"{}")
    assert iot.wait_idle()
    assert iot.stats()["off"] == RuleStats()
    assert read_stream(endpoint, stream) == []


def test_where_clause_filters_and_select_shapes_the_record(iot, endpoint, names):
    stream = f"fast-{names}"
    create_stream(endpoint, stream)
    iot.add_rule(
        "fast",
        {
            "Sql": "SELECT riderId, speed, topic(2) AS race FROM 'races/+/positions' WHERE speed > 30",
            "Actions": [{"Kinesis": {"StreamName": stream, "PartitionKey": "${riderId}"}}],
        },
    )
    for rider, speed in [(1, 25), (2, 35), (3, 40.5)]:
        iot.publish("races/r9/positions", json.dumps({"riderId": rider, "speed": speed, "x": 0}).encode())
    assert iot.wait_idle()

    records = read_stream(endpoint, stream)
    assert [(key, json.loads(data)) for key, data in records] == [
        ("2", {"riderId": 2, "speed": 35, "race": "r9"}),
        ("3", {"riderId": 3, "speed": 40.5, "race": "r9"}),
    ]
    stats = iot.stats()["fast"]
    assert (stats.received, stats.matched) == (3, 2)


def test_lambda_action_invokes_with_the_select_output(iot, invoker, endpoint, names):
    errors_url = create_queue(endpoint, f"lambda-errors-{names}")
    arn = "arn:aws:lambda:us-east-1:123456789012:function:"
    iot.add_rule(
        "to-lambda",
        {
            "Sql": "SELECT *, clientid() AS device FROM 'tele/#'",
            "Actions": [{"Lambda": {"FunctionArn": arn + "ingest"}}],
        },
    )
    iot.add_rule(
        "to-missing",
        {
            "Sql": "SELECT * FROM 'tele/#'",
            "Actions": [{"Lambda": {"FunctionArn": arn + "missing"}}],
            "ErrorAction": {"Sqs": {"QueueUrl": errors_url}},
        },
    )
    with MqttClient(iot.mqtt_url, "bike-3") as device:
        device.publish("tele/3", b'{"v": 1}', qos=1)
        device.publish("tele/3", b'{"boom": true}', qos=1)
        stats = wait_for_stats(iot, "to-lambda", lambda s: s.actions_succeeded >= 2)

    assert invoker.events == [
        (arn + "ingest", {"v": 1, "device": "bike-3"}),
        (arn + "ingest", {"boom": True, "device": "bike-3"}),
    ]
    # A handler error is not an action failure (AWS invokes asynchronously), but it is counted.
    assert (stats.actions_failed, stats.function_errors) == (0, 1)
    errors = receive_all(endpoint, errors_url, 2)
    assert {e["failures"][0]["failedAction"] for e in errors} == {"LambdaAction"}


def test_republish_action_feeds_subscribers(iot):
    iot.add_rule(
        "echo",
        {
            "Sql": "SELECT speed FROM 'in/+'",
            "Actions": [{"Republish": {"Topic": "out/${topic(2)}", "Qos": 1}}],
        },
    )
    with MqttClient(iot.ws_url) as browser:
        browser.subscribe("out/#", qos=1)
        iot.publish("in/bike-1", b'{"speed": 5, "x": 1}')
        received = browser.receive()
    assert (received.topic, received.payload) == ("out/bike-1", b'{"speed":5}')


def test_unsupported_actions_and_bad_sql_are_reported(iot):
    info = iot.add_rule(
        "partial",
        {
            "Sql": "SELECT * FROM 'p'",
            "Actions": [{"Timestream": {"DatabaseName": "d"}}, {"Republish": {"Topic": "q"}}],
        },
    )
    assert info.actions == ("RepublishAction(q)",)
    assert "Timestream" in info.unsupported_actions[0]
    with pytest.raises(ValueError, match="FROM"):
        iot.add_rule("bad", {"Sql": "SELECT *", "Actions": []})


def skipped_rule(logical_id: str, properties: dict[str, Any], resolved: bool = True) -> SkippedResource:
    return SkippedResource(
        logical_id=logical_id,
        resource_type="AWS::IoT::TopicRule",
        definition={"Type": "AWS::IoT::TopicRule", "Properties": properties},
        physical_id=f"standin{logical_id.lower()}",
        resolved_properties=properties if resolved else None,
    )


def deploy_result(stack: str, skipped: list[SkippedResource]) -> DeployResult:
    return DeployResult(
        stack_name=stack,
        stack_id="id",
        status="CREATE_COMPLETE",
        outputs={},
        resources={},
        functions={},
        skipped=skipped,
    )


def test_register_loads_a_stacks_rules_and_replaces_them_on_redeploy(iot):
    payload = {"Sql": "SELECT * FROM 'a'", "Actions": [{"Republish": {"Topic": "b"}}]}
    named = skipped_rule("Named", {"RuleName": "my_rule", "TopicRulePayload": payload})
    unnamed = skipped_rule("Unnamed", {"TopicRulePayload": payload})
    unresolved = skipped_rule(
        "Unresolved",
        {"TopicRulePayload": {"Sql": {"Fn::Sub": "SELECT * FROM '${X}'"}, "Actions": []}},
        resolved=False,
    )
    other = SkippedResource("Api", "AWS::ApiGateway::RestApi", {}, "api")

    infos = iot.register(deploy_result("stack", [named, unnamed, unresolved, other]))

    assert [(i.name, i.error is None) for i in infos] == [
        ("my_rule", True),
        ("standinunnamed", True),
        ("standinunresolved", False),
    ]
    assert (named.handled_by, unnamed.handled_by, unresolved.handled_by) == (HANDLED_BY, HANDLED_BY, None)
    assert other.handled_by is None
    assert sorted(r.name for r in iot.rules()) == ["my_rule", "standinunnamed"]

    # A redeploy without the unnamed rule drops it; another stack's rules stay
    iot.add_rule("api_rule", payload)
    iot.register(deploy_result("stack", [named]))
    assert sorted(r.name for r in iot.rules()) == ["api_rule", "my_rule"]
    iot.unregister("stack")
    assert [r.name for r in iot.rules()] == ["api_rule"]
