"""Shared pieces of the fault suite: a local stack with a fault injector, races, the oracle check.

Every fault test runs a short, real race through localcloud (Kinesis → tumbling-window aggregator
→ DynamoDB → API Gateway), injects one fault, and compares the final standings read from the API
over HTTP with :func:`tests.support.oracle.expected_standings` computed from the messages sent.
The faults that apply to any stream consumer run against the KCL consumer too (``consumer="kcl"``:
KCL workers read the stream in the aggregator mapping's place, into the same table).
"""

from __future__ import annotations

import contextlib
import json
import random
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
from localcloud.faults import FaultInjector

from alleycat.stack import LocalStack
from producers import KinesisProducer
from simulator import RaceSpec, all_race_messages, plan_races
from tests.support.oracle import expected_standings

# Short windows keep each race short; the idle wait closes a race's last window soon after its end.
WINDOW_SECONDS = "2"
WINDOW_IDLE_WAIT_S = 0.5
DRAIN_TIMEOUT_S = 120.0
AGGREGATOR = "AggregatorFunction"
# Who consumes the race stream: the aggregator's event source mapping, or KCL workers.
CONSUMERS = ("lambda", "kcl")
# The KCL's timings shortened for tests: a dead worker's leases expire after 6 s (not 10 s), the
# leader assigns leases every second, and children of a split shard are checked for every 0.5 s.
KCL_TEST_PROPERTIES = {
    "failoverTimeMillis": "6000",
    "leaseAssignmentIntervalMillis": "1000",
    "parentShardPollIntervalMillis": "500",
    "shardSyncIntervalMillis": "2000",
    "idleTimeBetweenReadsInMillis": "200",
    # The KCL's CloudWatch metrics in 2 s batches, so a short test sees them.
    "metricsBufferTimeMillis": "2000",
}


@contextlib.contextmanager
def running_stack(
    home: Path, *, persist: bool = False, seed: int = 1, consumer: str = "lambda"
) -> Iterator[tuple[LocalStack, FaultInjector]]:
    """A started local stack (template.yaml, 2 s windows) with a fault injector on its endpoint.

    ``consumer="kcl"``: one KCL worker (test timings) consumes the stream instead of the aggregator,
    and the stack is returned once the worker holds its lease. Rules left behind by a failing test
    are cleared and the stack is stopped on the way out.
    """
    stack = LocalStack(
        home=home,
        persist=persist,
        parameters={"WindowSeconds": WINDOW_SECONDS},
        window_idle_wait_s=WINDOW_IDLE_WAIT_S,
        consumer=consumer,
        kcl_workers=1,
        kcl_properties=KCL_TEST_PROPERTIES,
    )
    injector = FaultInjector(seed=seed)
    stack.start()
    try:
        assert stack.cloud is not None
        stack.cloud.add_middleware(injector)
        if consumer == "kcl":
            # The KCL bootstraps its lease table first (up to a minute); the tests' deadlines are
            # for their faults, so they start once the worker reads.
            wait_until(lambda: any(lease.get("leaseOwner") for lease in kcl_leases(stack)), 180, "a lease")
        yield stack, injector
    finally:
        injector.clear()
        stack.stop()


def outputs(stack: LocalStack) -> dict[str, str]:
    """The main stack's outputs (StreamName, ApiUrl, DeadLetterQueueUrl, ...)."""
    return stack.stacks["alleycat"].outputs


def plan(
    racers: int, duration: int, *, seed: int, classes: Sequence[int] = (1,), race_id_base: int | None = None
) -> list[RaceSpec]:
    """Races that start now, with raceIds no other test of the run shares (seed and time)."""
    return plan_races(
        list(classes),
        racers,
        duration=duration,
        seed=seed,
        start_epoch_ms=int(time.time() * 1000),
        race_id_base=race_id_base,
    )


def messages_of(specs: Iterable[RaceSpec]) -> list[dict[str, Any]]:
    """Every message of the races, in sending order."""
    return [m for spec in specs for m in all_race_messages(spec)]


def with_duplicates(messages: Sequence[dict[str, Any]], share: float, seed: int) -> list[dict[str, Any]]:
    """The messages plus ``share`` of them again, each duplicate a little after its original."""
    rnd = random.Random(seed)
    out = list(messages)
    for index in sorted(rnd.sample(range(len(messages)), int(len(messages) * share)), reverse=True):
        out.insert(min(len(out), index + 1 + rnd.randrange(200)), messages[index])
    return out


def producer_for(stack: LocalStack, **options: Any) -> KinesisProducer:
    """A producer on the stack's stream (retries failed entries until its deadline)."""
    assert stack.cloud is not None
    return KinesisProducer(
        stream_name=outputs(stack)["StreamName"], client=stack.cloud.client("kinesis"), **options
    )


def send(stack: LocalStack, messages: Iterable[dict[str, Any]], **options: Any) -> KinesisProducer:
    """Put every message (partition key raceId) and wait until each is accepted; returns the producer."""
    with producer_for(stack, **options) as producer:
        for message in messages:
            producer.put(orjson.dumps(message), message["raceId"])
    assert producer.last_result is not None
    assert producer.last_result.ok, producer.last_result.failures_by_code()
    return producer


def put_raw(stack: LocalStack, records: Sequence[tuple[bytes, str]], timeout: float = 60.0) -> int:
    """PutRecords with a plain client, as a device gateway would: batches of up to 500 records and
    4 MB, re-sending only the entries Kinesis refused (the shard limits throttle bursts) until all
    are in. Returns how many entries were refused on the way."""
    assert stack.cloud is not None
    kinesis = stack.cloud.client("kinesis")
    stream = outputs(stack)["StreamName"]
    refused = 0
    deadline = time.monotonic() + timeout
    batch: list[tuple[bytes, str]] = []
    for record in [*records, None]:
        full = len(batch) == 500 or (
            record is not None and sum(len(d) for d, _ in batch) + len(record[0]) > 4_000_000
        )
        if batch and (record is None or full):
            pending = batch
            while pending:
                response = kinesis.put_records(
                    StreamName=stream, Records=[{"Data": data, "PartitionKey": key} for data, key in pending]
                )
                pending = [
                    entry
                    for entry, out in zip(pending, response["Records"], strict=True)
                    if "ErrorCode" in out
                ]
                refused += len(pending)
                if pending:
                    assert time.monotonic() < deadline, "records still refused at the deadline"
                    time.sleep(0.25)  # the shard's budget refills continuously
            batch = []
        if record is not None:
            batch.append(record)
    return refused


def drain(stack: LocalStack, timeout: float = DRAIN_TIMEOUT_S) -> None:
    """Wait until the stream and the table's stream are consumed and every window has closed.

    With KCL workers: until each shard's lease is checkpointed at the shard's last record (the
    processor checkpoints a window only after its merge has landed) or at its end, then the
    mappings (the table's stream) drain.
    """
    assert stack.cloud is not None
    if stack.kcl is not None:
        tips = shard_tips(stack)
        wait_until(lambda: _kcl_caught_up(stack, tips), timeout, "the KCL workers to checkpoint every record")
    assert stack.cloud.wait_for_mappings(timeout=timeout, include_windows=True), "mappings did not drain"


def kcl_leases(stack: LocalStack) -> list[dict[str, Any]]:
    """The KCL lease table's items (one per shard), attribute values unwrapped: leaseKey,
    leaseOwner, checkpoint ("TRIM_HORIZON", a sequence number, "SHARD_END"), parentShardIds."""
    assert stack.cloud is not None and stack.kcl is not None
    table = stack.kcl.workers[0].config.application_name
    ddb = stack.cloud.client("dynamodb")
    try:
        items = ddb.scan(TableName=table, ConsistentRead=True).get("Items", [])
    except ddb.exceptions.ResourceNotFoundException:
        return []  # the workers have not created it yet
    return [{key: next(iter(value.values())) for key, value in item.items()} for item in items]


# Per (stream, shard): an iterator past the records already counted and the last sequence number.
_TIPS: dict[tuple[str, str], tuple[str | None, int]] = {}


def shard_tips(stack: LocalStack) -> dict[str, int]:
    """Each shard's last sequence number now (0: empty), read with GetRecords from where the last
    call stopped."""
    assert stack.cloud is not None
    kinesis = stack.cloud.client("kinesis")
    stream = outputs(stack)["StreamName"]
    tips: dict[str, int] = {}
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        key = (outputs(stack)["StreamArn"], shard["ShardId"])
        iterator, last = _TIPS.get(key, (None, 0))
        if iterator is None and last == 0:
            iterator = kinesis.get_shard_iterator(
                StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
        while iterator is not None:
            answer = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
            if answer["Records"]:
                last = int(answer["Records"][-1]["SequenceNumber"])
            if not answer["Records"] or "NextShardIterator" not in answer:
                iterator = answer.get("NextShardIterator")
                break
            iterator = answer["NextShardIterator"]
        _TIPS[key] = (iterator, last)
        tips[shard["ShardId"]] = last
    return tips


def _kcl_caught_up(stack: LocalStack, tips: dict[str, int]) -> bool:
    leases = {str(lease["leaseKey"]): str(lease.get("checkpoint", "")) for lease in kcl_leases(stack)}
    for shard, last in tips.items():
        checkpoint = leases.get(shard)
        if last == 0 or checkpoint == "SHARD_END":
            continue
        if checkpoint is None or not checkpoint.isdigit() or int(checkpoint) < last:
            return False
    return True


def get_json(url: str) -> tuple[int, dict[str, Any]]:
    """GET ``url``: (status, JSON body), also for 4xx/5xx answers."""
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def leaderboard(stack: LocalStack, race_id: int) -> dict[str, Any]:
    """The race's whole leaderboard from the API over HTTP (every page), standings concatenated."""
    api = outputs(stack)["ApiUrl"]
    standings: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = {"limit": "1000", **({"cursor": cursor} if cursor else {})}
        status, body = get_json(f"{api}/races/{race_id}/leaderboard?{urllib.parse.urlencode(query)}")
        assert status == 200, body
        standings.extend(body["standings"])
        cursor = body.get("nextCursor")
        if not cursor:
            return {**body, "standings": standings}


def assert_standings_match(
    stack: LocalStack, specs: Iterable[RaceSpec], messages: Iterable[dict[str, Any]]
) -> None:
    """Each race is final and its standings are exactly the oracle's: nothing lost, nothing twice."""
    oracle = expected_standings(messages)
    for spec in specs:
        body = leaderboard(stack, spec.race_id)
        got = [
            {"rank": s["rank"], "racerId": s["racerId"], "totalOutput": s["totalOutput"]}
            for s in body["standings"]
        ]
        expected = oracle[spec.race_id]
        assert len(got) == len(expected), f"race {spec.race_id}: {len(got)} racers, expected {len(expected)}"
        diff = [(g, e) for g, e in zip(got, expected, strict=True) if g != e][:5]
        assert not diff, f"race {spec.race_id}: first differences (got, expected): {diff}"
        assert body["status"] == "final", body["status"]


def receive_all(stack: LocalStack, expected: int, timeout: float = 30.0) -> list[dict[str, Any]]:
    """Drain the failure queue: every message body (JSON), waiting up to ``timeout`` for ``expected``."""
    assert stack.cloud is not None
    sqs = stack.cloud.client("sqs")
    url = outputs(stack)["DeadLetterQueueUrl"]
    bodies: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        messages = got.get("Messages", [])
        for message in messages:
            bodies.append(orjson.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        if not messages:
            if len(bodies) >= expected:
                return bodies
            time.sleep(0.2)
    return bodies


def mapping_errors(stack: LocalStack) -> int:
    """Failed invocations the stream mappings have seen so far (all shards)."""
    assert stack.cloud is not None
    return sum(s.errors for s in stack.cloud.mapping_engine.stats())


def function_name(stack: LocalStack, logical_id: str) -> str:
    """The deployed name of the main stack's function ``logical_id``."""
    for source in stack.stacks["alleycat"].result.functions.values():
        if source.logical_id == logical_id:
            return source.function_name
    raise KeyError(logical_id)


def wait_until(condition: Any, timeout: float, what: str) -> None:
    """Poll ``condition()`` every 20 ms until it is true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)
