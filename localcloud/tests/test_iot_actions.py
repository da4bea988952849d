"""Rule actions and the rules engine with fake AWS clients (no servers)."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
from localcloud.iot import ActionServices, EvalContext, IotMessage, RuleEngine, TopicRule, build_action
from localcloud.iot.actions import ActionConfigError
from localcloud.iot.sql import SelectResult


class FakeClient:
    """Records calls; ``failures`` maps an operation to an exception or a callable answer."""

    def __init__(
        self, calls: list[tuple[str, str, dict[str, Any]]], service: str, answers: dict[str, Any]
    ) -> None:
        self._calls, self._service, self._answers = calls, service, answers

    def __getattr__(self, operation: str):
        def call(**request: Any) -> Any:
            self._calls.append((self._service, operation, request))
            answer = self._answers.get(operation)
            if isinstance(answer, Exception):
                raise answer
            if callable(answer):
                return answer(request)
            return answer or {}

        return call


class FakeAws:
    def __init__(self, **answers: Any) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.answers = answers

    def client(self, service: str) -> FakeClient:
        return FakeClient(self.calls, service, self.answers)

    def requests(self, operation: str) -> list[dict[str, Any]]:
        return [request for _, op, request in self.calls if op == operation]


def item(payload: dict[str, Any], topic: str = "t/1") -> tuple[SelectResult, EvalContext]:
    body = json.dumps(payload).encode()
    ctx = EvalContext(IotMessage(topic=topic, payload=body, timestamp_ms=1))
    return SelectResult(body, payload), ctx


def test_kinesis_batches_are_chunked_at_500_records_in_order():
    aws = FakeAws(put_records=lambda request: {"Records": [{} for _ in request["Records"]]})
    action = build_action(
        {"Kinesis": {"StreamName": "s", "PartitionKey": "${id}"}}, ActionServices(aws.client)
    )

    outcomes = action.run_many([item({"id": n}) for n in range(1200)])

    assert outcomes == [None] * 1200
    calls = aws.requests("put_records")
    assert [len(c["Records"]) for c in calls] == [500, 500, 200]
    keys = [r["PartitionKey"] for c in calls for r in c["Records"]]
    assert keys == [str(n) for n in range(1200)]


def test_kinesis_batch_reports_each_failed_record_and_empty_keys():
    def answer(request):
        return {"Records": [{"ErrorCode": "ProvisionedThroughputExceededException"}, {}]}

    aws = FakeAws(put_records=answer)
    action = build_action(
        {"Kinesis": {"StreamName": "s", "PartitionKey": "${id}"}}, ActionServices(aws.client)
    )

    outcomes = action.run_many([item({"id": "a"}), item({"nope": 1}), item({"id": "b"})])

    assert "ProvisionedThroughputExceededException" in str(outcomes[0])
    assert "empty" in str(outcomes[1])
    assert outcomes[2] is None
    assert [r["PartitionKey"] for r in aws.requests("put_records")[0]["Records"]] == ["a", "b"]


def test_kinesis_batch_call_failure_fails_every_record_of_the_call():
    aws = FakeAws(put_records=RuntimeError("connection refused"))
    action = build_action({"Kinesis": {"StreamName": "s"}}, ActionServices(aws.client))
    outcomes = action.run_many([item({}), item({})])
    assert all("connection refused" in str(o) for o in outcomes)


def test_kinesis_without_partition_key_uses_a_random_one():
    aws = FakeAws()
    action = build_action({"kinesis": {"streamName": "s"}}, ActionServices(aws.client))
    action.run(*item({}))
    action.run(*item({}))
    keys = [r["PartitionKey"] for r in aws.requests("put_record")]
    assert len(set(keys)) == 2 and all(len(k) == 36 for k in keys)


def test_sqs_sns_dynamodb_and_firehose_requests():
    aws = FakeAws()
    services = ActionServices(aws.client)
    result, ctx = item({"id": "x", "speed": 1.5, "ok": True})

    build_action({"Sqs": {"QueueUrl": "q", "UseBase64": True}}, services).run(result, ctx)
    build_action({"Sns": {"TargetArn": "arn:t", "MessageFormat": "RAW"}}, services).run(result, ctx)
    build_action({"DynamoDBv2": {"PutItem": {"TableName": "tbl"}}}, services).run(result, ctx)
    build_action({"Firehose": {"DeliveryStreamName": "f", "Separator": "\\n"}}, services).run(result, ctx)

    (sqs,) = aws.requests("send_message")
    assert base64.b64decode(sqs["MessageBody"]) == result.payload
    (sns,) = aws.requests("publish")
    assert (sns["TargetArn"], sns["Message"]) == ("arn:t", result.payload.decode())
    (put_item,) = aws.requests("put_item")
    assert put_item == {
        "TableName": "tbl",
        "Item": {"id": {"S": "x"}, "speed": {"N": "1.5"}, "ok": {"BOOL": True}},
    }
    (firehose,) = aws.requests("put_record")
    assert firehose["Record"]["Data"] == result.payload + b"\n"


@pytest.mark.parametrize(
    "definition",
    [{"Kinesis": {}}, {"Sqs": {"QueueUrl": {"Ref": "Queue"}}}, {"Timestream": {}}, {"A": {}, "B": {}}],
)
def test_unusable_action_definitions_are_refused(definition):
    with pytest.raises(ActionConfigError):
        build_action(definition, ActionServices(FakeAws().client))


def test_one_error_message_per_rule_and_message_with_every_failure():
    # Given a rule with two failing actions, one working action and an SQS error action
    aws = FakeAws(put_record=RuntimeError("stream gone"), publish=RuntimeError("topic gone"))
    services = ActionServices(aws.client)
    rule = TopicRule.from_payload(
        "two_failures",
        {
            "Sql": "SELECT * FROM 'fail/+' WHERE n > 0",
            "Actions": [
                {"Kinesis": {"StreamName": "s", "PartitionKey": "k"}},
                {"Sqs": {"QueueUrl": "ok-queue"}},
                {"Sns": {"TargetArn": "arn:t"}},
            ],
            "ErrorAction": {"Sqs": {"QueueUrl": "errors"}},
        },
        services,
    )
    engine = RuleEngine()
    engine.replace("test", [rule])
    try:
        # When two matching messages and one filtered out are published
        for n in (1, 0, 2):
            engine.submit(IotMessage(topic="fail/x", payload=json.dumps({"n": n}).encode(), timestamp_ms=1))
        engine.submit(IotMessage(topic="other", payload=b"{}", timestamp_ms=1))
        assert engine.wait_idle(5)
        stats = engine.stats()["two_failures"]
    finally:
        engine.close()

    # Then each matching message produced one error message naming both failures
    errors = [json.loads(r["MessageBody"]) for r in aws.requests("send_message") if r["QueueUrl"] == "errors"]
    assert [base64.b64decode(e["base64OriginalPayload"]) for e in errors] == [b'{"n": 1}', b'{"n": 2}']
    for error in errors:
        assert [f["failedAction"] for f in error["failures"]] == ["KinesisAction", "SnsAction"]
        assert [f["failedResource"] for f in error["failures"]] == ["s", "arn:t"]
    # And the working action still ran for both; nothing was lost
    assert len([r for r in aws.requests("send_message") if r["QueueUrl"] == "ok-queue"]) == 2
    assert (stats.received, stats.matched, stats.actions_succeeded, stats.actions_failed) == (3, 2, 2, 4)
    assert (stats.error_actions_succeeded, stats.lost) == (2, 0)
    assert list(engine.failures) == []


def test_a_slow_rule_does_not_hold_up_another_rule():
    # Given a rule whose action blocks and another that is fast
    release = []

    def slow_answer(request):
        while not release:
            time.sleep(0.01)
        return {}

    slow = FakeAws(put_record=slow_answer)
    fast = FakeAws()
    engine = RuleEngine()
    engine.replace(
        "a",
        [
            TopicRule.from_payload(
                "slow",
                {"Sql": "SELECT * FROM 'x'", "Actions": [{"Kinesis": {"StreamName": "s"}}]},
                ActionServices(slow.client),
            )
        ],
    )
    engine.replace(
        "b",
        [
            TopicRule.from_payload(
                "fast",
                {"Sql": "SELECT * FROM 'x'", "Actions": [{"Sqs": {"QueueUrl": "q"}}]},
                ActionServices(fast.client),
            )
        ],
    )
    try:
        engine.submit(IotMessage(topic="x", payload=b"{}", timestamp_ms=1))
        deadline = time.monotonic() + 5
        while not fast.requests("send_message") and time.monotonic() < deadline:
            time.sleep(0.01)
        # Then the fast rule delivered while the slow one is still busy
        assert len(fast.requests("send_message")) == 1
        assert not engine.idle()
    finally:
        release.append(True)
        engine.close()
    assert len(slow.requests("put_record")) == 1


def test_rule_names_must_be_unique_across_sources():
    engine = RuleEngine()
    payload = {"Sql": "SELECT * FROM 'x'", "Actions": []}
    services = ActionServices(FakeAws().client)
    engine.replace("stack:a", [TopicRule.from_payload("same", payload, services)])
    try:
        with pytest.raises(ValueError, match="same"):
            engine.replace("stack:b", [TopicRule.from_payload("same", payload, services)])
    finally:
        engine.close()
