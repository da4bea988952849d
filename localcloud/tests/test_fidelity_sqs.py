"""SQS event source mapping scenarios recorded on AWS (test_lambda_integration_sqs), replayed
against localcloud's SQS trigger (``localcloud.triggers.sqs``) over a moto server.

These recordings date from 2023-24, before Lambda added EventSourceMappingArn to an SQS mapping's
answer and while snapshots wrote LastModified as "datetime": the replays drop the one and use the
other token. As the recording did, a JSON message body is compared parsed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from esm_support import Aws, RecordingInvoker, aws, invoker, moto_endpoint, wait_for
from fidelity import replay
from fidelity.normalise import Normaliser, error_facts, response_facts
from fidelity.scoreboard import compare
from localcloud.esm import moto_compat
from localcloud.moto_bridge import detach_builtin_pollers
from localcloud.triggers.sqs import SqsTrigger

__all__ = ["aws", "invoker", "moto_endpoint"]

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

Q = "sqs::TestSQSEventSourceMapping::"
# Snapshot tokens of the time for SQS message attributes.
SQS_TOKENS = {
    "LastModified": "datetime",
    "SentTimestamp": "timestamp",
    "ApproximateFirstReceiveTimestamp": "timestamp",
    "SenderId": "sender-id",
}


@pytest.fixture
def trigger(aws: Aws, invoker: RecordingInvoker) -> Iterator[SqsTrigger]:
    """localcloud's SQS trigger against the module's moto server (synced by each test)."""
    moto_compat.apply()
    started = SqsTrigger(invoker, aws.client, "us-east-1")
    yield started
    started.stop()
    client = aws.client("lambda")
    for mapping in client.list_event_source_mappings()["EventSourceMappings"]:
        client.delete_event_source_mapping(UUID=mapping["UUID"])


def _start(trigger: SqsTrigger) -> None:
    # As localcloud does once a mapping exists: moto's own SQS trigger (which would receive the
    # message and try Docker) is detached, then the mapping's poller starts.
    detach_builtin_pollers()
    trigger.sync()


def _setup(aws: Aws, norm: Normaliser) -> tuple[str, str, str]:
    """A queue and a function, registered as <resource:1> and <resource:2>: (url, arn, name)."""
    qname, url, qarn = replay.queue(aws)
    fn = replay.function(aws, replay.role(aws))
    norm.add("resource", qname), norm.add("resource", fn)
    return url, qarn, fn


def _answer(response: dict[str, Any]) -> dict[str, Any]:
    facts = response_facts(response)
    facts.pop("EventSourceMappingArn", None)
    if "FilterCriteria" in facts:
        filters = facts["FilterCriteria"]["Filters"]
        facts["FilterCriteria"] = {"Filters": [{"Pattern": json.loads(f["Pattern"])} for f in filters]}
    return facts


def _events(norm: Normaliser, invoker: RecordingInvoker, fn: str) -> list[Any]:
    out = []
    for call in invoker.calls_for(fn):
        for record in call.records:
            norm.add("uuid", record["messageId"])
            norm.add("receipt-handle", record["receiptHandle"])
            norm.add("md5-of-body", record["md5OfBody"])
            record["body"] = _parsed(record["body"])
        out.append(norm(call.event))
    return out


def _parsed(body: str) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return body


def _queue_empty(aws: Aws, url: str) -> bool:
    attributes = aws.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return (
        attributes["ApproximateNumberOfMessages"] == "0"
        and attributes["ApproximateNumberOfMessagesNotVisible"] == "0"
    )


# (filter, matching item, not matching item) as the recording test sent them.
FILTERS: list[tuple[dict[str, Any], Any, Any]] = [
    ({"body": {"testItem": ["test24"]}}, {"testItem": "test24"}, {"testItem": "tesWER"}),
    ({"body": {"testItem": ["test24", "test45"]}}, {"testItem": "test45"}, {"testItem": "WERTD"}),
    (
        {"body": {"testItem": ["test24", "test45"], "test2": ["go"]}},
        {"testItem": "test45", "test2": "go"},
        {"testItem": "test67", "test2": "go"},
    ),
    ({"body": {"test2": [{"exists": True}]}}, {"test2": "7411"}, {"test5": "74545"}),
    ({"body": {"test2": [{"numeric": [">", 100]}]}}, {"test2": 105}, "this is a test string"),
    ({"body": {"test2": [{"numeric": ["<", 100]}]}}, {"test2": 93}, {"test2": 105}),
    ({"body": {"test2": [{"numeric": [">=", 100, "<", 200]}]}}, {"test2": 105}, {"test2": 200}),
    ({"body": {"test2": [{"prefix": "us-1"}]}}, {"test2": "us-1-48454"}, {"test2": "eu-wert"}),
]


def _filter_case(index: int) -> str:
    tail = "this is a test string" if index == 4 else f"item_not_matching{index}"
    return f"filter{index}-item_matching{index}-{tail}"


@pytest.mark.parametrize("index", range(len(FILTERS)), ids=[_filter_case(i) for i in range(len(FILTERS))])
def test_sqs_event_filter(index: int, aws: Aws, invoker: RecordingInvoker, trigger: SqsTrigger) -> None:
    pattern, matching, not_matching = FILTERS[index]
    norm = Normaliser(tokens=SQS_TOKENS)
    url, qarn, fn = _setup(aws, norm)
    invoker.register(fn, lambda event: None)
    sqs = aws.client("sqs")
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(matching))
    sqs.send_message(
        QueueUrl=url, MessageBody=not_matching if isinstance(not_matching, str) else json.dumps(not_matching)
    )
    created = aws.client("lambda").create_event_source_mapping(
        EventSourceArn=qarn,
        FunctionName=fn,
        MaximumBatchingWindowInSeconds=1,
        FilterCriteria={"Filters": [{"Pattern": json.dumps(pattern)}]},
    )
    norm(_answer(created))
    _start(trigger)
    replay.wait_calls(invoker, fn, 1)
    # As the recording checks: the queue ends empty (the other message was dropped, not retried).
    assert wait_for(lambda: _queue_empty(aws, url), timeout=replay.TIMEOUT)
    observed = {
        "create_event_source_mapping_response": norm(_answer(created)),
        "invocation_events": _events(norm, invoker, fn),
    }
    compare(f"{Q}test_sqs_event_filter[{_filter_case(index)}]", observed)


INVALID = [
    (None, "None"),
    ("simple string", "simple string"),
    ({"eventSource": "aws:sqs"}, "invalid_filter2"),
    ({"eventSource": []}, "invalid_filter3"),
]


@pytest.mark.parametrize(("invalid", "case"), INVALID, ids=[c for _, c in INVALID])
def test_sqs_invalid_event_filter(invalid: Any, case: str, aws: Aws) -> None:
    norm = Normaliser(tokens=SQS_TOKENS)
    _, qarn, fn = _setup(aws, norm)
    pattern = invalid if isinstance(invalid, str) else json.dumps(invalid)
    with pytest.raises(aws.client("lambda").exceptions.ClientError) as error:
        aws.client("lambda").create_event_source_mapping(
            EventSourceArn=qarn,
            FunctionName=fn,
            MaximumBatchingWindowInSeconds=1,
            FilterCriteria={"Filters": [{"Pattern": pattern}]},
        )
    compare(
        f"{Q}test_sqs_invalid_event_filter[{case}]",
        {"create_event_source_mapping_exception": norm(error_facts(error.value))},
    )


def test_duplicate_event_source_mappings(aws: Aws, trigger: SqsTrigger) -> None:
    norm = Normaliser(tokens=SQS_TOKENS)
    _, qarn, fn = _setup(aws, norm)
    client = aws.client("lambda")
    created = client.create_event_source_mapping(FunctionName=fn, EventSourceArn=qarn)
    with pytest.raises(client.exceptions.ClientError) as error:
        client.create_event_source_mapping(FunctionName=fn, EventSourceArn=qarn)
    observed = {"create": norm(_answer(created)), "error": norm(error_facts(error.value))}
    compare(Q + "test_duplicate_event_source_mappings", observed)


def test_event_source_mapping_default_batch_size(aws: Aws, trigger: SqsTrigger) -> None:
    norm = Normaliser(tokens=SQS_TOKENS)
    _, qarn, fn = _setup(aws, norm)
    client = aws.client("lambda")
    created = client.create_event_source_mapping(FunctionName=fn, EventSourceArn=qarn)
    # Batches over 10 messages need a batching window, on update as on create.
    with pytest.raises(client.exceptions.ClientError) as update_error:
        client.update_event_source_mapping(UUID=created["UUID"], BatchSize=11)
    with pytest.raises(client.exceptions.ClientError) as create_error:
        client.create_event_source_mapping(FunctionName=fn, EventSourceArn=qarn, BatchSize=11)
    observed = {
        "create-event-source-mapping": norm(_answer(created)),
        "invalid-update-event-source-mapping": norm(error_facts(update_error.value)),
        "invalid-create-event-source-mapping": norm(error_facts(create_error.value)),
    }
    compare(Q + "test_event_source_mapping_default_batch_size", observed)


def test_sqs_event_source_mapping(aws: Aws, invoker: RecordingInvoker, trigger: SqsTrigger) -> None:
    norm = Normaliser(tokens=SQS_TOKENS)
    url, qarn, fn = _setup(aws, norm)
    invoker.register(fn, lambda event: None)
    created = aws.client("lambda").create_event_source_mapping(
        EventSourceArn=qarn, FunctionName=fn, MaximumBatchingWindowInSeconds=1
    )
    norm(_answer(created))
    _start(trigger)
    aws.client("sqs").send_message(QueueUrl=url, MessageBody=json.dumps({"foo": "bar"}))
    replay.wait_calls(invoker, fn, 1)
    assert wait_for(lambda: _queue_empty(aws, url), timeout=replay.TIMEOUT)
    observed = {
        "create-event-source-mapping-response": norm(_answer(created)),
        "events": _events(norm, invoker, fn),
    }
    compare(Q + "test_sqs_event_source_mapping", observed)
