"""The race store's hard limits against moto's DynamoDB: item size, and the closer racing a merge."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import orjson
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from consumers.aggregator.core import WindowAggregator
from leaderboard.adapters.dynamodb import CLIENT_CONFIG, DynamoRaceStore, RetryBudgetExhaustedError
from leaderboard.adapters.items import MAX_ITEM_BYTES, item_size
from leaderboard.domain import RaceDelta, close_stale_races
from leaderboard.domain.messages import MAX_NAME_LENGTH, MAX_SECOND, MalformedMessageError, parse_message
from leaderboard.domain.scoring import RacerDelta
from leaderboard.retry import RetryPolicy
from tests.support.events import kinesis_record
from tests.support.tables import create_races_table

RACE = 7_100_001


@pytest.fixture
def ddb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_races_table(client)
        yield client


def test_a_bucket_of_racers_with_scattered_seconds_stays_under_the_item_limit(ddb: Any) -> None:
    # Given 100 racers of one bucket, each with 5,000 seconds scattered over the longest race the
    # contract accepts (scattered bits are the bitmap's worst case for compression) and the longest
    # names, in four-byte characters
    rng = random.Random(3)
    delta = RaceDelta(race_id=RACE, class_id=1, first_device_ts=1, last_device_ts=2, messages=500_000)
    for racer in range(100):
        seconds = rng.sample(range(MAX_SECOND + 1), 5_000)
        name = "\U0001f6b2" * MAX_NAME_LENGTH
        delta.racers[racer] = RacerDelta(name, {sec: rng.randrange(1, 8_977_500) for sec in seconds})
    store = DynamoRaceStore(ddb, "races")

    # When the store merges them
    store.merge(delta)

    # Then every item it wrote is under DynamoDB's limit, counted as DynamoDB counts it
    items = ddb.scan(TableName="races")["Items"]  # type: ignore[attr-defined]
    sizes = {item["sk"]["S"]: item_size(item) for item in items}
    assert "BUCKET#000000" in sizes and max(sizes.values()) < MAX_ITEM_BYTES
    assert len(store.load_scores(RACE)) == 100


def test_a_second_past_the_longest_race_is_malformed() -> None:
    # The validator quarantines what the store could not hold.
    payload = (
        b'{"event":"update","deviceTimestamp":1,"second":%d,"raceId":1,"name":"A","racerId":1,'
        b'"classId":1,"cadence":70,"resistance":50}'
    )
    assert parse_message(payload % MAX_SECOND).second == MAX_SECOND
    with pytest.raises(MalformedMessageError, match="second"):
        parse_message(payload % (MAX_SECOND + 1))


# -- the closer racing a merge ------------------------------------------------------------------


class CloserBetweenReadAndWrite:
    """The store's boto3 client, running the race closer just before the merge's first bucket put.

    That is the window the issue found: the merge has read the race (live), the closer offers the
    scores stored so far and closes the race, then the merge writes a higher total.
    """

    def __init__(self, client: Any, close: Callable[[], object]) -> None:
        self._client = client
        self._close = close
        self.closed_in_between = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def put_item(self, **kwargs: Any) -> Any:
        if not self.closed_in_between and kwargs["Item"]["sk"]["S"].startswith("BUCKET#"):
            self.closed_in_between = True
            self._close()
        return self._client.put_item(**kwargs)


def _delta(seconds: range, ts0: int) -> RaceDelta:
    delta = RaceDelta(race_id=RACE, class_id=4, first_device_ts=ts0, last_device_ts=ts0 + seconds[-1] * 1000)
    delta.racers[1] = RacerDelta("Ada", {sec: 10_000 for sec in seconds})
    delta.messages = len(seconds)
    return delta


def _best(ddb: Any) -> int:
    item = ddb.get_item(TableName="races", Key={"pk": {"S": "CLASS#4"}, "sk": {"S": "PB#000000000001"}})[
        "Item"
    ]
    return int(item["best"]["N"])


def test_a_merge_that_lands_after_the_closer_still_offers_the_personal_best(ddb: Any) -> None:
    # Given a race idle long enough to be closed, with 10 seconds stored
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    ts0 = int(t0.timestamp() * 1000)
    DynamoRaceStore(ddb, "races", clock=lambda: t0).merge(_delta(range(10), ts0))
    later = t0 + timedelta(hours=1)
    closer_store = DynamoRaceStore(ddb, "races", clock=lambda: later)
    hooked = CloserBetweenReadAndWrite(
        ddb, lambda: close_stale_races(closer_store, later, timedelta(seconds=120))
    )

    # When a late window (10 more seconds) merges while the closer runs between its read and write
    DynamoRaceStore(hooked, "races", clock=lambda: later).merge(_delta(range(20), ts0))

    # Then the race is closed, and the class board holds the higher total all the same
    assert hooked.closed_in_between
    race = closer_store.get_race(RACE)
    assert race is not None and race.closed
    assert _best(ddb) == 20 * 10_000


def test_a_lagging_consumer_never_gets_its_live_races_closed(ddb: Any) -> None:
    # Given a race whose first seconds the aggregator read ten minutes after they arrived (its
    # iterator age is far above the grace period) and then nothing for five minutes: the rest of the
    # race is still queued in the stream behind a slow consumer
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    ts0 = int(t0.timestamp() * 1000)
    read_at = t0 + timedelta(minutes=10)
    store = DynamoRaceStore(ddb, "races", clock=lambda: read_at)
    aggregator = WindowAggregator(store, lambda poison: None, 768 * 1024, clock=lambda: read_at)
    records = [
        kinesis_record(orjson.dumps(_message(sec, ts0)), sec, arrival=ts0 / 1000 + sec) for sec in range(5)
    ]
    aggregator.handle({"Records": records})

    # When the closer runs five minutes later (grace two minutes)
    closed = close_stale_races(store, read_at + timedelta(minutes=5), timedelta(seconds=120))

    # Then the race stays live: idleness is judged by what the stream delivered, not the wall clock
    assert closed == []


def test_a_consumer_that_caught_up_lets_idle_races_close(ddb: Any) -> None:
    # Given a race read as it arrived, then a quiet stream
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    ts0 = int(t0.timestamp() * 1000)
    store = DynamoRaceStore(ddb, "races", clock=lambda: t0 + timedelta(seconds=5))
    aggregator = WindowAggregator(
        store, lambda poison: None, 768 * 1024, clock=lambda: t0 + timedelta(seconds=5)
    )
    records = [
        kinesis_record(orjson.dumps(_message(sec, ts0)), sec, arrival=ts0 / 1000 + sec) for sec in range(5)
    ]
    aggregator.handle({"Records": records})

    # When the closer runs five minutes later, Then it closes the race
    assert close_stale_races(store, t0 + timedelta(minutes=5), timedelta(seconds=120)) == [RACE]


def _message(second: int, ts0: int) -> dict[str, Any]:
    return {
        "event": "update",
        "deviceTimestamp": ts0 + second * 1000,
        "second": second,
        "raceId": RACE,
        "name": "Ada",
        "racerId": 1,
        "classId": 4,
        "cadence": 70,
        "resistance": 50,
    }


# -- one retry policy, bounded by the invocation's time -------------------------------------------


class ThrottledTable:
    """The store's boto3 client while the table throttles every call (as DynamoDB answers it)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        def throttled(**kwargs: Any) -> Any:
            self.calls += 1
            raise ClientError(
                {
                    "Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"},
                    "ResponseMetadata": {"HTTPStatusCode": 400},
                },
                name,
            )

        return throttled


def test_a_throttled_merge_gives_up_at_the_deadline_and_raises(ddb: Any) -> None:
    # Given a table that throttles, and a store with 2 s of (fake) time left to retry
    clock = [0.0]
    throttled = ThrottledTable(ddb)
    store = DynamoRaceStore(
        throttled,
        "races",
        retry=RetryPolicy(base_delay=0.05, max_delay=0.5),
        sleep=lambda s: clock.__setitem__(0, clock[0] + s),
        monotonic=lambda: clock[0],
    )
    store.retry_until(2.0)

    # When a merge runs, Then it raises before the deadline rather than retrying past it
    with pytest.raises(RetryBudgetExhaustedError):
        store.merge(_delta(range(3), 1))
    assert clock[0] < 2.0 and throttled.calls > 3


def test_the_store_client_leaves_retrying_to_the_store() -> None:
    client = boto3.client("dynamodb", region_name="us-east-1", config=CLIENT_CONFIG)
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 1}
