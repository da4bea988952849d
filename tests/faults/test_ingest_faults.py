"""Faults on the way in and at the table: duplicated and replayed records, throttled PutRecords
entries, poison records, throttled DynamoDB calls and unprocessed keys.

Each applies to any consumer of the stream, so each runs against the Lambda aggregator and the KCL
consumer (one local stack per consumer, shared by the module's tests); each test races its own
raceIds, injects its fault for its own duration only, and checks the API's final standings against
the oracle.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from localcloud.faults import ErrorResponse, FaultInjector, PutRecordsEntryFailures, UnprocessedKeys

from alleycat.stack import LocalStack
from producers import RetryPolicy
from tests.faults.support import (
    CONSUMERS,
    assert_standings_match,
    drain,
    messages_of,
    outputs,
    plan,
    put_raw,
    receive_all,
    running_stack,
    send,
    wait_until,
    with_duplicates,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.xdist_group("faults-ingest")]


# Each consumer's stack is its own xdist group (joined with the module's), so the two run side by side.
@pytest.fixture(
    scope="module",
    params=[pytest.param(c, marks=pytest.mark.xdist_group(f"faults-ingest-{c}")) for c in CONSUMERS],
)
def cloud(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LocalStack, FaultInjector]]:
    home = Path(tmp_path_factory.mktemp(f"faults-ingest-{request.param}"))
    with running_stack(home, seed=11, consumer=request.param) as running:
        yield running


def test_duplicates_and_replayed_batches_count_once(cloud: tuple[LocalStack, FaultInjector]) -> None:
    """Given 10% duplicates in the stream and, after their windows closed, a replayed slice of
    already-counted records (as a producer that lost its acknowledgements would resend them),
    the standings count every (racer, second) exactly once."""
    stack, _ = cloud
    specs = plan(150, 16, seed=101, classes=(1, 2))
    messages = messages_of(specs)
    half = len(messages) // 2
    send(stack, with_duplicates(messages[:half], 0.10, seed=1))
    # The first half's windows close and are merged before anything is replayed.
    drain(stack)
    rnd = random.Random(2)
    start = rnd.randrange(half // 2)
    replayed = messages[start : start + half // 5]  # a contiguous slice: a batch sent again
    put_raw(stack, [(orjson.dumps(m), str(m["raceId"])) for m in replayed])
    send(stack, with_duplicates(messages[half:], 0.10, seed=3))
    drain(stack)
    assert_standings_match(stack, specs, messages)


def test_throttled_put_records_entries_are_retried_until_all_land(
    cloud: tuple[LocalStack, FaultInjector],
) -> None:
    """Given 30% of PutRecords entries failing with ProvisionedThroughputExceededException (and not
    written), the producer retries exactly the failed entries and every message counts once."""
    stack, injector = cloud
    specs = plan(150, 16, seed=102, classes=(1, 2))
    messages = messages_of(specs)
    with injector.active(PutRecordsEntryFailures("kinesis", rate=0.3)) as rule:
        producer = send(
            stack, messages, retry_policy=RetryPolicy(base_delay=0.02, max_delay=0.2, record_ttl=120)
        )
    stats = producer.stats()
    assert rule.injected >= 0.25 * len(messages), rule.injected  # the fault really happened
    assert stats.retried >= rule.injected * 0.9 and stats.failed == 0
    drain(stack)
    assert_standings_match(stack, specs, messages)


def test_poison_records_are_quarantined_and_never_stall_the_shard(
    cloud: tuple[LocalStack, FaultInjector],
) -> None:
    """Given invalid JSON, wrong types, missing fields and a ~900 KB payload mixed among good
    messages, each poison record reaches the failure queue with its payload (or its digest, when
    too big for SQS) and the reason, and every good message still counts."""
    stack, _ = cloud
    assert stack.cloud is not None
    receive_all(stack, expected=0, timeout=0.5)  # start from an empty failure queue
    specs = plan(100, 12, seed=103)
    messages = messages_of(specs)
    race_id = specs[0].race_id
    sample = dict(messages[0])
    huge = orjson.dumps({**sample, "name": "x" * 900_000})
    poison = [
        b"{not json",
        orjson.dumps({**sample, "cadence": "fast"}),
        orjson.dumps({**sample, "racerId": "seven"}),
        orjson.dumps({k: v for k, v in sample.items() if k != "second"}),
        orjson.dumps({"raceId": race_id}),
        huge,
    ]
    # Poison goes out in the same PutRecords calls as good records, on the race's partition key,
    # so it sits in the middle of the shard between good records.
    rnd = random.Random(4)
    records = [orjson.dumps(m) for m in messages]
    for item in poison:
        records.insert(rnd.randrange(len(records)), item)
    put_raw(stack, [(record, str(race_id)) for record in records])
    drain(stack)
    assert_standings_match(stack, specs, messages)

    parked = receive_all(stack, expected=len(poison))
    assert len(parked) == len(poison), [p.get("reason") for p in parked]
    assert all(p["reason"] and p["partitionKey"] == str(race_id) for p in parked)
    small = sorted(p["payload"] for p in parked if not p["truncated"])
    assert small == sorted(p.decode() for p in poison if p is not huge)
    (big,) = [p for p in parked if p["truncated"]]
    assert big["payloadBytes"] == len(huge)
    assert big["payloadSha256"] == hashlib.sha256(huge).hexdigest()
    assert "name" in big["reason"]
    # The shard did not stall: the mapping reads to the tip (waited for: a busy machine may still be
    # polling the last empty read when the standings are already exact). The KCL's drain above
    # already waited for its checkpoint at the shard's last record.
    if stack.kcl is not None:
        return
    wait_until(
        lambda: all(s.iterator_age_ms == 0 for s in stack.cloud.mapping_engine.stats()),
        timeout=30,
        what="the mapping to read its shard to the tip",
    )


def test_dynamodb_throttling_and_unprocessed_keys_lose_nothing(
    cloud: tuple[LocalStack, FaultInjector],
) -> None:
    """Given 30% of the races table's PutItem / UpdateItem / GetItem calls throttled
    (ProvisionedThroughputExceededException) and 30% of BatchGetItem keys returned as UnprocessedKeys
    for the whole race, the store's retries absorb them and the standings are exact. (The KCL's own
    lease tables are left alone: their throttling is the KCL's business, not the store's.) The store
    never uses BatchWriteItem (its writes are conditional puts, which BatchWriteItem cannot express),
    so UnprocessedItems cannot arise; the call count proves it."""
    stack, injector = cloud
    # Classes no other test of the module races: every racer sets a personal best, so the race ends
    # in ~200 conditional puts whichever consumer merges it (the KCL merges it in fewer windows).
    specs = plan(100, 12, seed=203, classes=(3, 4))
    messages = messages_of(specs)
    throttle = ErrorResponse(
        "dynamodb",
        {"PutItem", "UpdateItem", "GetItem"},
        rate=0.3,
        code="ProvisionedThroughputExceededException",
        message="The level of configured provisioned throughput for the table was exceeded.",
        body_contains=f'"{outputs(stack)["TableName"]}"',
    )
    unprocessed = UnprocessedKeys("dynamodb", rate=0.3)
    with injector.active(throttle), injector.active(unprocessed):
        send(stack, messages)
        drain(stack)
    assert throttle.injected > 10 and unprocessed.injected > 0
    assert injector.calls_to("dynamodb", "BatchWriteItem") == 0
    assert_standings_match(stack, specs, messages)
