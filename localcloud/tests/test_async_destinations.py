"""Asynchronous invocation: throttled events are retried, never dropped; what fails for good reaches
the OnFailure destination with Lambda's invocation record; successes reach OnSuccess."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from localcloud import LocalCloud

TEMPLATE = Path(__file__).parent / "templates" / "async_destinations" / "template.yaml"

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def record_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("async-records")


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    # Time scale 0.02: the throttle backoff starts at 20 ms, a 60 s maximum event age lasts 1.2 s.
    with LocalCloud(
        metrics=False, api_gateway=False, iot=False, async_time_scale=0.02, async_retry_delays=(0.1, 0.1)
    ) as local:
        yield local


@pytest.fixture(scope="module")
def outputs(cloud: LocalCloud, record_dir: Path) -> dict[str, str]:
    return dict(cloud.deploy(TEMPLATE, "async", parameters={"RecordDir": str(record_dir)}).outputs)


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def drain(cloud: LocalCloud, queue_url: str) -> list[dict[str, Any]]:
    answer = cloud.client("sqs").receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
    messages = answer.get("Messages", [])
    for message in messages:
        cloud.client("sqs").delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return [json.loads(m["Body"]) for m in messages]


def collect(
    cloud: LocalCloud, queue_url: str, predicate: Callable[[dict[str, Any]], bool], count: int
) -> list[Any]:
    found: list[dict[str, Any]] = []

    def enough() -> bool:
        found.extend(r for r in drain(cloud, queue_url) if predicate(r))
        return len(found) >= count

    wait_for(enough)
    return found


def test_a_burst_beyond_reserved_concurrency_is_throttled_yet_all_delivered(
    cloud: LocalCloud, outputs: dict[str, str], record_dir: Path
) -> None:
    # Given a function with reserved concurrency 1 subscribed to a topic
    throttled_before = cloud.async_invoker.throttled

    # When a burst of messages is published
    sns = cloud.client("sns")
    for n in range(8):
        sns.publish(TopicArn=outputs["TopicArn"], Message=json.dumps({"n": n}))

    # Then every message is handled exactly once, after throttles were retried
    assert cloud.wait_for_mappings(timeout=60)
    handled = [json.loads(p.read_text()) for p in record_dir.glob("slow-*.json")]
    numbers = sorted(json.loads(e["Records"][0]["Sns"]["Message"])["n"] for e in handled)
    assert numbers == list(range(8))
    assert cloud.async_invoker.throttled > throttled_before
    assert not [f for f in cloud.async_invoker.failures if f.function.endswith(outputs["SlowFunction"])]

    # And each success reaches the OnSuccess destination with its request and response
    successes = collect(cloud, outputs["SuccessQueueUrl"], lambda r: True, 8)
    assert {s["requestContext"]["condition"] for s in successes} == {"Success"}
    assert all(s["responsePayload"] == {"handled": "yes"} for s in successes)


def test_an_event_throttled_until_its_maximum_age_goes_to_the_failure_destination(
    cloud: LocalCloud, outputs: dict[str, str]
) -> None:
    # Given a function with reserved concurrency 0 and MaximumEventAgeInSeconds 60 (1.2 s here)
    started = time.monotonic()

    # When it is invoked asynchronously
    cloud.client("lambda").invoke(
        FunctionName=outputs["BlockedFunction"], InvocationType="Event", Payload=json.dumps({"blocked": 1})
    )

    # Then, after its maximum age and not before, its record reaches OnFailure: EventAgeExceeded,
    # the request payload kept, no response (the function never ran)
    (record,) = collect(cloud, outputs["FailureQueueUrl"], lambda r: r["requestPayload"] == {"blocked": 1}, 1)
    assert time.monotonic() - started >= 60 * 0.02
    assert record["requestContext"]["condition"] == "EventAgeExceeded"
    assert record["requestContext"]["functionArn"].endswith(f":function:{outputs['BlockedFunction']}:$LATEST")
    assert record["requestContext"]["approximateInvokeCount"] >= 2
    assert "responseContext" not in record
    assert record["version"] == "1.0"


def test_a_failing_event_is_retried_then_goes_to_the_failure_destination(
    cloud: LocalCloud, outputs: dict[str, str]
) -> None:
    # Given a function that always fails, with MaximumRetryAttempts 1
    # When it is invoked asynchronously
    cloud.client("lambda").invoke(
        FunctionName=outputs["FailingFunction"], InvocationType="Event", Payload=json.dumps({"failing": 1})
    )

    # Then it ran twice and its record reaches OnFailure with the function's error
    (record,) = collect(cloud, outputs["FailureQueueUrl"], lambda r: r["requestPayload"] == {"failing": 1}, 1)
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 2
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert record["responsePayload"]["errorType"] == "RuntimeError"


def test_the_template_settings_are_the_functions_event_invoke_config(
    cloud: LocalCloud, outputs: dict[str, str]
) -> None:
    # Given the deployed stack, when Lambda's API reads a function's asynchronous settings
    config = cloud.client("lambda").get_function_event_invoke_config(FunctionName=outputs["BlockedFunction"])

    # Then they are the template's
    assert config["MaximumEventAgeInSeconds"] == 60
    assert config["MaximumRetryAttempts"] == 2
    assert config["DestinationConfig"]["OnFailure"]["Destination"].endswith(
        ":" + outputs["FailureQueueUrl"].rsplit("/", 1)[-1]
    )
