"""The aggregator's and the race closer's IAM policies grant every DynamoDB call their store makes.

localcloud does not enforce IAM, so a call the store starts making (the personal bests' BatchGetItem
and PutItem, say) with no grant would pass every local test and fail on AWS. These tests run each
function's real work against moto, record the operations its client sent, and compare them with
the actions template.yaml grants that function on the races table.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from consumers.aggregator.core import WindowAggregator
from leaderboard.adapters.dynamodb import DynamoRaceStore
from leaderboard.domain import RaceDelta, RacerMessage, close_stale_races
from tests.support.events import kinesis_event
from tests.support.tables import create_races_table, load_template

RACE = 7_100_001


def granted_table_actions(function: str) -> set[str]:
    """The DynamoDB actions the function's inline policies allow (any resource of the table)."""
    actions: set[str] = set()
    for policy in load_template()["Resources"][function]["Properties"]["Policies"]:
        for statement in policy.get("Statement", []):
            listed = statement["Action"]
            actions |= {
                a for a in ([listed] if isinstance(listed, str) else listed) if a.startswith("dynamodb:")
            }
    return actions


class RecordedCalls:
    """A DynamoDB client that notes the name of every operation it sends."""

    def __init__(self) -> None:
        self.client = boto3.client("dynamodb", region_name="us-east-1")
        self.operations: set[str] = set()
        self.client.meta.events.register("before-call.dynamodb.*", self._note)

    def _note(self, model: Any, **_: Any) -> None:
        self.operations.add(f"dynamodb:{model.name}")


@pytest.fixture
def calls() -> Iterator[RecordedCalls]:
    with mock_aws():
        recorded = RecordedCalls()
        create_races_table(recorded.client)
        recorded.operations.clear()  # creating the table is the test's doing, not the function's
        yield recorded


def message(racer: int, second: int, event: str = "update") -> dict[str, Any]:
    return {
        "event": event,
        "deviceTimestamp": 1_700_000_000_000 + second * 1000,
        "second": second,
        "raceId": RACE,
        "name": f"Racer {racer}",
        "racerId": racer,
        "classId": 4,
        "cadence": 70,
        "resistance": 50,
    }


def test_the_aggregator_is_granted_every_call_of_a_race_to_its_finish(calls: RecordedCalls) -> None:
    # Given a race merged window by window to its finish, then a late message after it was closed
    store = DynamoRaceStore(calls.client, "races")
    aggregator = WindowAggregator(store, lambda _poison: None, 768 * 1024)
    aggregator.handle(kinesis_event([message(r, 1) for r in range(1, 150)]))
    aggregator.handle(kinesis_event([message(r, 2, "final") for r in range(1, 150)]))
    race = store.get_race(RACE)
    assert race is not None and race.status == "final"
    assert store.close_race(RACE, race.version)
    aggregator.handle(kinesis_event([message(200, 3, "final")]))
    # Then every operation it sent is granted to the aggregator function
    assert {"dynamodb:BatchGetItem", "dynamodb:PutItem"} <= calls.operations
    assert calls.operations <= granted_table_actions("AggregatorFunction")


def test_the_race_closer_is_granted_every_call_of_closing_a_race(calls: RecordedCalls) -> None:
    # Given an idle live race (written by the aggregator's store, not recorded)
    writer = DynamoRaceStore(boto3.client("dynamodb", region_name="us-east-1"), "races")
    delta = RaceDelta(race_id=RACE, class_id=4)
    for racer in range(1, 150):
        delta.add(RacerMessage.model_validate(message(racer, 1)))
    writer.merge(delta)
    # When the closer closes it
    closer = DynamoRaceStore(calls.client, "races")
    later = datetime.now(UTC) + timedelta(hours=1)
    assert close_stale_races(closer, later, timedelta(minutes=5)) == [RACE]
    # Then every operation it sent is granted to the closer function
    assert {"dynamodb:BatchGetItem", "dynamodb:PutItem"} <= calls.operations
    assert calls.operations <= granted_table_actions("RaceCloserFunction")
