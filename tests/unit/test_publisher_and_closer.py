"""The publisher (DynamoDB Streams → IoT topics) and the race closer, against moto."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import orjson
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.iotdata.models import iotdata_backends

from consumers.publisher import handler as publisher_handler
from consumers.publisher.core import StandingsPublisher
from consumers.settings import publisher_settings
from leaderboard.adapters.dynamodb import DynamoRaceStore
from leaderboard.adapters.items import race_to_item
from leaderboard.domain import RacerMessage, WindowAccumulator, apply_window, close_stale_races
from tests.support.events import ddb_stream_record
from tests.support.tables import create_races_table

RACE = 777


def message(racer: int, second: int, cadence: int, event: str = "update") -> RacerMessage:
    return RacerMessage.model_validate(
        {
            "event": event,
            "deviceTimestamp": 1_700_000_000_000 + second * 1000,
            "second": second,
            "raceId": RACE,
            "name": f"Racer {racer}",
            "racerId": racer,
            "classId": 2,
            "cadence": cadence,
            "resistance": 50,
        }
    )


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class Stack:
    def __init__(self) -> None:
        self.ddb = boto3.client("dynamodb", region_name="us-east-1")
        self.table = create_races_table(self.ddb)
        self.clock = Clock()
        self.store = DynamoRaceStore(self.ddb, self.table, clock=self.clock)
        self.published: list[tuple[str, dict[str, Any]]] = []
        self.publisher = StandingsPublisher(
            self.store,
            lambda topic, payload: self.published.append((topic, orjson.loads(payload))),
            topic_prefix="alleycat",
            top_n=2,
            now_ms=lambda: 1_700_000_010_000,
        )

    def race_window(self, *messages: RacerMessage) -> None:
        window = WindowAccumulator()
        window.add_all(messages)
        apply_window(self.store, window)

    def meta_record(self, event_name: str, seq: int, old: Any = None) -> dict[str, Any]:
        race = self.store.get_race(RACE)
        assert race is not None
        keys = {"pk": {"S": f"RACE#{RACE}"}, "sk": {"S": "META"}}
        return ddb_stream_record(event_name, keys, race_to_item(race), old, seq)


@pytest.fixture
def stack() -> Iterator[Stack]:
    with mock_aws():
        yield Stack()


def test_summary_change_publishes_ranked_top_standings(stack: Stack) -> None:
    stack.race_window(message(1, 1, 60), message(2, 1, 80), message(3, 1, 80))
    response, summary = stack.publisher.handle({"Records": [stack.meta_record("INSERT", 1)]})
    assert response == {"batchItemFailures": []}
    topics = [t for t, _ in stack.published]
    assert topics == ["alleycat/races/777/standings", "alleycat/classes/2/races"]
    body = stack.published[0][1]
    assert body["raceId"] == RACE and body["status"] == "live" and body["racers"] == 3
    assert [(s["rank"], s["racerId"]) for s in body["standings"]] == [(1, 2), (1, 3)]  # top_n = 2
    assert body["standings"][0]["totalOutput"] == (80 + 35) * (50 + 65) / 100
    assert summary.freshness_ms == [9_000]


def test_bucket_changes_and_removes_are_ignored(stack: Stack) -> None:
    stack.race_window(message(1, 1, 60))
    bucket = ddb_stream_record(
        "MODIFY", {"pk": {"S": f"RACE#{RACE}"}, "sk": {"S": "BUCKET#000000"}}, {"x": {"S": "y"}}, None, 1
    )
    removed = ddb_stream_record("REMOVE", {"pk": {"S": f"RACE#{RACE}"}, "sk": {"S": "META"}}, None, None, 2)
    response, _ = stack.publisher.handle({"Records": [bucket, removed]})
    assert response == {"batchItemFailures": []}
    assert stack.published == []


def test_status_change_is_announced_on_the_class_topic(stack: Stack) -> None:
    stack.race_window(message(1, 1, 60))
    old = race_to_item(stack.store.get_race(RACE))  # type: ignore[arg-type]
    stack.race_window(message(1, 2, 60, event="final"))
    stack.publisher.handle({"Records": [stack.meta_record("MODIFY", 3, old=old)]})
    assert [t for t, _ in stack.published] == ["alleycat/races/777/standings", "alleycat/classes/2/races"]
    assert stack.published[1][1]["status"] == "final"


def test_several_changes_of_one_race_publish_once(stack: Stack) -> None:
    stack.race_window(message(1, 1, 60))
    first = stack.meta_record("MODIFY", 1, old={})
    stack.race_window(message(1, 2, 60))
    second = stack.meta_record("MODIFY", 2, old={})
    stack.publisher.handle({"Records": [first, second]})
    standings = [b for t, b in stack.published if t.endswith("/standings")]
    assert len(standings) == 1 and standings[0]["second"] == 2


def test_publish_reads_only_the_standings_and_takes_the_summary_from_the_stream_image(stack: Stack) -> None:
    # Given a summary change on the table's stream
    stack.race_window(message(1, 1, 60), message(2, 1, 80))
    record = stack.meta_record("INSERT", 1)
    calls: list[str] = []
    stack.ddb.meta.events.register("before-call.dynamodb.*", lambda model, **_: calls.append(model.name))
    # When the publisher handles it
    response, summary = stack.publisher.handle({"Records": [record]})
    # Then the summary is the image's (not read again): one read, of the standings, per publish
    assert response == {"batchItemFailures": []} and summary.standings_published == 1
    assert calls == ["Query"]
    body = next(b for t, b in stack.published if t.endswith("/standings"))
    assert (body["second"], body["racers"]) == (1, 2)


def test_an_older_change_in_the_batch_still_announces_its_status_change(stack: Stack) -> None:
    # Given one batch with a race's change to final, then a later change of the final race
    stack.race_window(message(1, 1, 60))
    live = race_to_item(stack.store.get_race(RACE))  # type: ignore[arg-type]
    stack.race_window(message(1, 2, 60, event="final"))
    to_final = stack.meta_record("MODIFY", 1, old=live)
    final = to_final["dynamodb"]["NewImage"]
    stack.race_window(message(1, 3, 60))
    later = stack.meta_record("MODIFY", 2, old=final)
    # When the publisher handles the batch
    stack.publisher.handle({"Records": [to_final, later]})
    # Then the standings go out once, from the newest change, and the status change is announced
    standings = [b for t, b in stack.published if t.endswith("/standings")]
    announced = [b for t, b in stack.published if t.endswith("/races")]
    assert [b["second"] for b in standings] == [3]
    assert [b["status"] for b in announced] == ["final"]


def test_failed_publish_is_reported_as_batch_item_failure(stack: Stack) -> None:
    stack.race_window(message(1, 1, 60))

    def refuse(topic: str, payload: bytes) -> None:
        raise ConnectionError("IoT unavailable")

    publisher = StandingsPublisher(stack.store, refuse, topic_prefix="alleycat", top_n=5, now_ms=lambda: 0)
    record = stack.meta_record("INSERT", 5)
    response, _ = publisher.handle({"Records": [record]})
    assert response == {"batchItemFailures": [{"itemIdentifier": record["dynamodb"]["SequenceNumber"]}]}


def test_handler_publishes_through_iot_data(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, lambda_context: object
) -> None:
    stack.race_window(message(1, 1, 60))
    monkeypatch.setenv("TABLE_NAME", stack.table)
    monkeypatch.setenv("IOT_DATA_ENDPOINT", "https://data-ats.iot.us-east-1.amazonaws.com")
    publisher_settings.cache_clear()
    publisher_handler.publisher.cache_clear()
    try:
        publisher_handler.lambda_handler({"Records": [stack.meta_record("INSERT", 1)]}, lambda_context)  # type: ignore[arg-type]
    finally:
        publisher_settings.cache_clear()
        publisher_handler.publisher.cache_clear()
    published = iotdata_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].published_payloads
    topics = [topic for topic, _ in published]
    assert "alleycat/races/777/standings" in topics
    payload = dict(published)["alleycat/races/777/standings"]
    assert len(payload) < 128 * 1024


def test_closer_closes_idle_races_and_records_results(stack: Stack) -> None:
    stack.race_window(message(1, 1, 60), message(2, 1, 70))
    assert (
        close_stale_races(stack.store, stack.clock.now + timedelta(seconds=30), timedelta(seconds=120)) == []
    )
    closed = close_stale_races(stack.store, stack.clock.now + timedelta(seconds=121), timedelta(seconds=120))
    assert closed == [RACE]
    race = stack.store.get_race(RACE)
    assert race is not None and race.status == "final" and race.closed
    assert list(stack.store.live_races()) == []
    pb = stack.ddb.get_item(
        TableName=stack.table, Key={"pk": {"S": "CLASS#2"}, "sk": {"S": "PB#000000000002"}}
    )
    assert int(pb["Item"]["best"]["N"]) == (70 + 35) * (50 + 65) * 100  # ten-thousandths


def test_closer_leaves_a_race_that_moved_on(stack: Stack) -> None:
    stack.race_window(message(1, 1, 60))
    stale = stack.store.get_race(RACE)
    assert stale is not None
    stack.race_window(message(1, 2, 60))  # a late window lands after the closer read the race
    assert not stack.store.close_race(RACE, stale.version)
    assert stack.store.get_race(RACE).status == "live"  # type: ignore[union-attr]


def test_late_seconds_after_close_still_count_and_update_the_best(stack: Stack) -> None:
    stack.race_window(message(1, 1, 60))
    close_stale_races(stack.store, stack.clock.now + timedelta(hours=1), timedelta(seconds=120))
    stack.race_window(message(1, 2, 60))
    pb = stack.ddb.get_item(
        TableName=stack.table, Key={"pk": {"S": "CLASS#2"}, "sk": {"S": "PB#000000000001"}}
    )
    assert int(pb["Item"]["best"]["N"]) == 2 * (60 + 35) * (50 + 65) * 100
    assert stack.store.get_race(RACE).status == "final"  # type: ignore[union-attr]
