"""The KCL record processor's lifecycle: merge, then checkpoint; lease lost → no checkpoint; shutdown
requested → flush and checkpoint; shard ended → checkpoint always. Against moto's DynamoDB through
the real race store, with amazon-kclpy's own record type."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import boto3
import orjson
import pytest
from amazon_kclpy.messages import Record
from moto import mock_aws

from consumers.kcl.processor import ProcessorConfig, ShardProcessor
from consumers.quarantine import PoisonRecord
from leaderboard.adapters.dynamodb import DynamoRaceStore
from leaderboard.domain.race import RaceDelta
from tests.support.oracle import js_output_e4
from tests.support.tables import create_races_table

RACE = 7_001
ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/races"


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Checkpoints:
    """A checkpointer that records where it was asked to checkpoint."""

    def __init__(self) -> None:
        self.calls: list[tuple[str | None, int | None]] = []

    def checkpoint(self, sequence_number: str | None = None, sub_sequence_number: int | None = None) -> None:
        self.calls.append((sequence_number, sub_sequence_number))


class FlakyStore:
    """The real store, whose next ``failures`` merges raise (DynamoDB unavailable)."""

    def __init__(self, store: DynamoRaceStore) -> None:
        self.store = store
        self.failures = 0

    def merge(self, delta: RaceDelta) -> Any:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("DynamoDB is down")
        return self.store.merge(delta)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def message(racer: int, second: int, event: str = "update") -> bytes:
    body = {"event": event, "deviceTimestamp": 1_700_000_000_000 + second * 1000, "second": second}
    body |= {"raceId": RACE, "name": f"r{racer}", "racerId": racer, "classId": 1, "cadence": 80}
    return orjson.dumps(body | {"resistance": 50})


def records(payloads: list[bytes], first_sequence: int = 100) -> list[Record]:
    return [
        Record(
            {
                "data": base64.b64encode(p).decode(),
                "partitionKey": str(RACE),
                "sequenceNumber": str(first_sequence + i),
                "subSequenceNumber": 0,
                "approximateArrivalTimestamp": 1_700_000_000_000,
            }
        )
        for i, p in enumerate(payloads)
    ]


def batch(recs: list[Record], checkpointer: Checkpoints) -> SimpleNamespace:
    return SimpleNamespace(records=recs, checkpointer=checkpointer)


@pytest.fixture
def store() -> Iterator[FlakyStore]:
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        yield FlakyStore(DynamoRaceStore(ddb, create_races_table(ddb)))


@pytest.fixture
def parked() -> list[PoisonRecord]:
    return []


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def processor(store: FlakyStore, parked: list[PoisonRecord], clock: Clock) -> ShardProcessor:
    config = ProcessorConfig(stream_arn=ARN, window_seconds=5.0, retry_delay_s=0.0)
    shard = ShardProcessor(store, parked.extend, config, clock=clock, sleep=lambda _: None)  # type: ignore[arg-type]
    shard.initialize(SimpleNamespace(shard_id="shardId-000000000000", sequence_number="TRIM_HORIZON"))
    return shard


def scores(store: FlakyStore) -> dict[int, int]:
    return {s.racer_id: s.total for s in store.load_scores(RACE)}


def test_a_window_merges_when_due_and_only_then_is_checkpointed(
    processor: ShardProcessor, store: FlakyStore, clock: Clock
) -> None:
    # Given records of two racers, the second batch repeating a second (a replay)
    checkpoints = Checkpoints()
    processor.process_records(batch(records([message(1, 0), message(2, 0)]), checkpoints))
    processor.process_records(batch(records([message(1, 0), message(1, 1)], 102), checkpoints))
    # Then nothing is merged or checkpointed before the window is due
    assert checkpoints.calls == [] and scores(store) == {}
    # When the window's time has passed (an empty call: the shard went quiet)
    clock.now = 5.0
    processor.process_records(batch([], checkpoints))
    # Then the window is merged, each second once, and checkpointed at its last record
    one_second = js_output_e4(80, 50)
    assert scores(store) == {1: 2 * one_second, 2: one_second}
    assert checkpoints.calls == [("103", 0)]


def test_no_checkpoint_until_the_merge_has_landed(
    processor: ShardProcessor, store: FlakyStore, clock: Clock
) -> None:
    # Given a window whose merge fails twice (DynamoDB down) before it lands
    checkpoints = Checkpoints()
    store.failures = 2
    order: list[str] = []
    real_checkpoint = checkpoints.checkpoint

    def checkpoint(sequence_number: str | None = None, sub_sequence_number: int | None = None) -> None:
        order.append(f"checkpoint with {len(scores(store))} racers stored")
        real_checkpoint(sequence_number, sub_sequence_number)

    checkpoints.checkpoint = checkpoint  # type: ignore[method-assign]
    processor.process_records(batch(records([message(1, 0)]), checkpoints))
    clock.now = 6.0
    processor.process_records(batch([], checkpoints))
    # Then the checkpoint came once, after the merge landed
    assert store.failures == 0
    assert order == ["checkpoint with 1 racers stored"]


def test_lease_lost_drops_the_window_without_a_checkpoint(
    processor: ShardProcessor, store: FlakyStore, clock: Clock
) -> None:
    checkpoints = Checkpoints()
    processor.process_records(batch(records([message(1, 0)]), checkpoints))
    processor.lease_lost(SimpleNamespace())
    clock.now = 10.0
    processor.process_records(batch([], checkpoints))
    assert checkpoints.calls == [] and scores(store) == {}


def test_shutdown_requested_flushes_then_checkpoints(processor: ShardProcessor, store: FlakyStore) -> None:
    checkpoints = Checkpoints()
    processor.process_records(batch(records([message(1, 0), message(1, 1, "final")]), Checkpoints()))
    processor.shutdown_requested(SimpleNamespace(checkpointer=checkpoints))
    assert set(scores(store)) == {1}
    assert checkpoints.calls == [("101", 0)]


def test_shard_ended_flushes_and_checkpoints_even_when_empty(
    processor: ShardProcessor, store: FlakyStore
) -> None:
    ended = Checkpoints()
    processor.shard_ended(SimpleNamespace(checkpointer=ended))
    assert ended.calls == [(None, None)]
    processor.process_records(batch(records([message(3, 0)]), Checkpoints()))
    processor.shard_ended(SimpleNamespace(checkpointer=ended))
    assert set(scores(store)) == {3}
    assert ended.calls == [(None, None), (None, None)]


def test_poison_is_parked_and_the_good_records_still_count(
    processor: ShardProcessor, store: FlakyStore, parked: list[PoisonRecord], clock: Clock
) -> None:
    checkpoints = Checkpoints()
    processor.process_records(batch(records([message(1, 0), b"{not json", message(2, 0)]), checkpoints))
    clock.now = 5.0
    processor.process_records(batch([], checkpoints))
    assert [(p.sequence_number, p.event_source_arn) for p in parked] == [("101", ARN)]
    assert set(scores(store)) == {1, 2}
    assert checkpoints.calls == [("102", 0)]
