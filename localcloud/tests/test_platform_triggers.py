"""Triggers: SNS → function, S3 notifications → function / SQS / SNS, SQS mappings, schedules."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import pytest
from localcloud.invocation import InvocationResult
from localcloud.triggers.sqs import failed_message_ids

from localcloud import LocalCloud

TEMPLATE = Path(__file__).parent / "templates" / "platform_triggers" / "template.yaml"

integration = [pytest.mark.integration, pytest.mark.timeout(90)]


@pytest.fixture(scope="module")
def record_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("records")


@pytest.fixture(scope="module")
def cloud(record_dir: Path) -> Iterator[LocalCloud]:
    # rate(1 minute) becomes every 0.3 s: schedules can be tested without waiting minutes.
    with LocalCloud(schedule_time_scale=0.005) as local:
        yield local


@pytest.fixture(scope="module")
def outputs(cloud: LocalCloud, record_dir: Path) -> dict[str, str]:
    return cloud.deploy(TEMPLATE, "triggers", parameters={"RecordDir": str(record_dir)}).outputs


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def recorded(record_dir: Path, prefix: str) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(record_dir.glob(f"{prefix}-*.json"))]


def recorded_matching(record_dir: Path, predicate: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    return [event for event in recorded(record_dir, "recorder") if predicate(event)]


@pytest.mark.integration
@pytest.mark.timeout(90)
def test_sns_publish_invokes_subscribed_function_with_sns_event(cloud, outputs, record_dir):
    # When a message is published to the topic the function subscribes to
    message_id = cloud.client("sns").publish(
        TopicArn=outputs["TopicArn"],
        Message="lap complete",
        Subject="race",
        MessageAttributes={"raceId": {"DataType": "String", "StringValue": "5400802"}},
    )["MessageId"]

    # Then the function receives Lambda's SNS event
    def sns_events() -> list[dict[str, Any]]:
        return recorded_matching(
            record_dir, lambda e: e.get("Records", [{}])[0].get("EventSource") == "aws:sns"
        )

    record = wait_for(sns_events)[0]["Records"][0]
    assert record["EventVersion"] == "1.0"
    assert record["EventSubscriptionArn"].startswith(outputs["TopicArn"] + ":")
    sns = record["Sns"]
    assert sns["Type"] == "Notification"
    assert sns["MessageId"] == message_id
    assert sns["TopicArn"] == outputs["TopicArn"]
    assert sns["Message"] == "lap complete"
    assert sns["Subject"] == "race"
    assert sns["MessageAttributes"] == {"raceId": {"Type": "String", "Value": "5400802"}}


@pytest.mark.integration
@pytest.mark.timeout(90)
def test_sns_structured_message_delivers_the_lambda_variant(cloud, outputs, record_dir):
    cloud.client("sns").publish(
        TopicArn=outputs["TopicArn"],
        MessageStructure="json",
        Message=json.dumps({"default": "for everyone", "lambda": "for functions", "sqs": "for queues"}),
    )

    def messages() -> list[str]:
        events = recorded_matching(
            record_dir, lambda e: e.get("Records", [{}])[0].get("EventSource") == "aws:sns"
        )
        return [e["Records"][0]["Sns"]["Message"] for e in events]

    assert "for functions" in wait_for(lambda: [m for m in messages() if m.startswith("for ")])


@pytest.mark.integration
@pytest.mark.timeout(90)
def test_s3_notifications_reach_function_queue_and_topic(cloud, outputs, record_dir):
    s3 = cloud.client("s3")
    sqs = cloud.client("sqs")
    bucket = outputs["BucketName"]

    # When objects are written under each notification's prefix
    s3.put_object(Bucket=bucket, Key="function/a.json", Body=b"{}")
    s3.put_object(Bucket=bucket, Key="queue/b.json", Body=b"{}")
    s3.put_object(Bucket=bucket, Key="topic/c.json", Body=b"{}")
    s3.put_object(Bucket=bucket, Key="elsewhere/d.json", Body=b"{}")

    # Then the function gets an S3 event for its prefix only
    def s3_events() -> list[dict[str, Any]]:
        return recorded_matching(
            record_dir, lambda e: e.get("Records", [{}])[0].get("eventSource") == "aws:s3"
        )

    events = wait_for(s3_events)
    # Keys arrive URL-encoded, as on AWS (moto also encodes "/", which AWS leaves as it is).
    keys = [unquote_plus(e["Records"][0]["s3"]["object"]["key"]) for e in events]
    assert keys == ["function/a.json"]
    assert events[0]["Records"][0]["s3"]["bucket"]["name"] == bucket
    assert events[0]["Records"][0]["eventName"].startswith("ObjectCreated")

    # And the queue and the topic (subscribed by a queue) get theirs, after S3's test event
    def first_body(queue_url: str) -> dict[str, Any] | None:
        messages = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1).get("Messages", [])
        bodies = [json.loads(m["Body"]) for m in messages]
        return next((b for b in bodies if "Records" in b), None)

    queued = wait_for(lambda: first_body(outputs["UploadQueueUrl"]))
    assert unquote_plus(queued["Records"][0]["s3"]["object"]["key"]) == "queue/b.json"
    via_topic = wait_for(lambda: first_body(outputs["UploadTopicQueueUrl"]))
    assert unquote_plus(via_topic["Records"][0]["s3"]["object"]["key"]) == "topic/c.json"


@pytest.mark.integration
@pytest.mark.timeout(90)
def test_sqs_mapping_deletes_successes_and_retries_reported_failures(cloud, outputs, record_dir):
    # Given messages on the mapped queue, two of which fail on their first delivery
    sqs = cloud.client("sqs")
    bodies = ["ok-1", "flaky-2", "ok-3", "flaky-4", "ok-5"]
    sqs.send_message_batch(
        QueueUrl=outputs["WorkQueueUrl"],
        Entries=[{"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies)],
    )

    # When the mapping has drained the queue
    assert cloud.wait_for_mappings(timeout=30)

    # Then every message was processed once; reported failures came back exactly once more
    processed = recorded(record_dir, "batch")
    assert sorted(p["body"] for p in processed) == sorted(bodies)
    counts = {p["body"]: p["receive_count"] for p in processed}
    assert counts["flaky-2"] == counts["flaky-4"] == 2
    assert counts["ok-1"] == counts["ok-3"] == counts["ok-5"] == 1
    # The batching window gathered the sent messages into one first batch
    assert max(p["batch_size"] for p in processed) == 5
    attributes = sqs.get_queue_attributes(
        QueueUrl=outputs["WorkQueueUrl"],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    assert attributes == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}


@pytest.mark.integration
@pytest.mark.timeout(90)
def test_mapping_created_through_the_api_runs_with_its_concurrency(cloud, outputs, record_dir):
    # Given a queue mapped to the recorder through the Lambda API with MaximumConcurrency 3
    sqs = cloud.client("sqs")
    queue_url = sqs.create_queue(QueueName="api-mapped")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    cloud.client("lambda").create_event_source_mapping(
        EventSourceArn=queue_arn,
        FunctionName=outputs["RecorderFunctionName"],
        BatchSize=1,
        ScalingConfig={"MaximumConcurrency": 3},
    )

    # When messages arrive
    for n in range(6):
        sqs.send_message(QueueUrl=queue_url, MessageBody=f"api-{n}")

    # Then the mapping (picked up within a second) runs three pollers and delivers each message
    def bodies() -> list[str]:
        events = recorded_matching(
            record_dir, lambda e: e.get("Records", [{}])[0].get("eventSourceARN") == queue_arn
        )
        return sorted(r["body"] for e in events for r in e["Records"])

    assert wait_for(lambda: len(bodies()) == 6) and bodies() == [f"api-{n}" for n in range(6)]
    pollers = [p for p in cloud.sqs_trigger.pollers if p.mapping.queue_arn == queue_arn]
    assert len(pollers) == 3


@pytest.mark.integration
@pytest.mark.timeout(90)
def test_schedule_rule_invokes_function_with_its_input(cloud, outputs, record_dir):
    ticks = wait_for(lambda: len(recorded_matching(record_dir, lambda e: e == {"source": "tick"})) >= 2)

    assert ticks


@pytest.mark.integration
@pytest.mark.timeout(90)
def test_put_events_reaches_lambda_targets_of_matching_rules(cloud, outputs, record_dir):
    # When events are put on the default bus, one matching the template's rule and one not
    cloud.client("events").put_events(
        Entries=[
            {
                "Source": "race.simulator",
                "DetailType": "LapCompleted",
                "Detail": json.dumps({"racerId": 101}),
            },
            {"Source": "race.simulator", "DetailType": "Other", "Detail": json.dumps({"racerId": 102})},
        ]
    )

    # Then only the matching one is delivered, in EventBridge's shape
    def laps() -> list[dict[str, Any]]:
        return recorded_matching(record_dir, lambda e: e.get("source") == "race.simulator")

    events = wait_for(laps)
    assert events[0]["detail-type"] == "LapCompleted"
    assert events[0]["time"].endswith("Z")
    # A later matching event is a positive signal: once it arrived, the non-matching event put before
    # it would have arrived too had it been delivered (events of one bus go out in order).
    cloud.client("events").put_events(
        Entries=[
            {"Source": "race.simulator", "DetailType": "LapCompleted", "Detail": json.dumps({"racerId": 103})}
        ]
    )
    wait_for(lambda: len(laps()) >= 2)
    assert sorted(e["detail"]["racerId"] for e in laps()) == [101, 103]


@pytest.mark.integration
@pytest.mark.timeout(90)
def test_asynchronous_invoke_api_runs_the_function(cloud, outputs, record_dir):
    response = cloud.client("lambda").invoke(
        FunctionName=outputs["RecorderFunctionName"], InvocationType="Event", Payload=b'{"source": "async"}'
    )

    assert response["StatusCode"] == 202
    assert wait_for(lambda: recorded_matching(record_dir, lambda e: e == {"source": "async"}))


@pytest.mark.integration
@pytest.mark.timeout(90)
def test_kinesis_mapping_from_the_template_is_driven_by_the_mapping_engine(cloud, outputs, record_dir):
    if cloud.mapping_engine is None:
        pytest.skip("localcloud.esm is not available")
    kinesis = cloud.client("kinesis")
    for n in range(3):
        kinesis.put_record(
            StreamName=outputs["LapStreamName"], Data=f"lap-{n}".encode(), PartitionKey="5400802"
        )

    assert cloud.wait_for_mappings(timeout=30)

    def kinesis_records() -> list[dict[str, Any]]:
        events = recorded_matching(
            record_dir, lambda e: e.get("Records", [{}])[0].get("eventSource") == "aws:kinesis"
        )
        return [r for e in events for r in e["Records"]]

    records = wait_for(lambda: len(kinesis_records()) >= 3 and kinesis_records())
    assert sorted(base64.b64decode(r["kinesis"]["data"]) for r in records) == [b"lap-0", b"lap-1", b"lap-2"]


def _result(payload: Any, function_error: str | None = None) -> InvocationResult:
    return InvocationResult(request_id="r", payload=payload, function_error=function_error)


@pytest.mark.parametrize(
    ("payload", "function_error", "expected"),
    [
        (None, None, set()),
        ({}, None, set()),
        ({"batchItemFailures": []}, None, set()),
        ({"batchItemFailures": None}, None, set()),
        ({"batchItemFailures": [{"itemIdentifier": "b"}]}, None, {"b"}),
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, None, {"a", "b", "c"}),
        ({"batchItemFailures": [{"itemIdentifier": "zzz"}]}, None, {"a", "b", "c"}),
        ({"batchItemFailures": [{"id": "b"}]}, None, {"a", "b", "c"}),
        ({"errorMessage": "boom"}, "Unhandled", {"a", "b", "c"}),
    ],
)
def test_partial_batch_response_rules(payload, function_error, expected):
    assert failed_message_ids(_result(payload, function_error), ["a", "b", "c"], True) == expected


def test_partial_batch_response_is_ignored_without_report_batch_item_failures():
    result = _result({"batchItemFailures": [{"itemIdentifier": "b"}]})

    assert failed_message_ids(result, ["a", "b"], False) == set()
