"""Personal bests at the finish line against a real moto server, with AWS faults injected.

The store reads the stored bests in BatchGetItem pages and writes only the improvements, each a
keep-best conditional PutItem, all before the final window's buckets are written. These tests run it
over HTTP against moto (served here behind localcloud's fault injector) and check what must hold:
keep-best under concurrent writers, nothing lost when the window crashes before its bucket writes,
and no best lost or wrongly skipped when reads are throttled or come back partial.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from localcloud.faults import ErrorResponse, FaultInjector, Latency, UnprocessedKeys
from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server

from leaderboard.adapters.dynamodb import CLIENT_CONFIG, DynamoRaceStore
from leaderboard.adapters.items import personal_best_total
from leaderboard.domain import RaceDelta, RacerDelta
from leaderboard.domain.race import FinalResult
from leaderboard.retry import RetryPolicy
from tests.support.tables import create_races_table

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

CLASS = 6


def _one_call_at_a_time(app: Any) -> Any:
    """moto's backends are not thread-safe: two conditional writes served at once can both pass their
    condition, which DynamoDB never allows. localcloud's endpoint serializes each service's calls the
    same way; the faults (latency among them) act outside the lock, so writers still overlap."""
    lock = threading.Lock()

    def serialized(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        with lock:
            return list(app(environ, start_response))

    return serialized


class MotoServer:
    """moto's HTTP server on 127.0.0.1 behind a fault injector, in a thread of this process."""

    def __init__(self) -> None:
        self.faults = FaultInjector(seed=11)
        moto_app = _one_call_at_a_time(DomainDispatcherApplication(create_backend_app))
        self._server = make_server("127.0.0.1", 0, self.faults(moto_app), threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.endpoint = f"http://127.0.0.1:{self._server.port}"
        self.table = create_races_table(self.client(), f"races-{uuid.uuid4().hex[:8]}")

    def client(self) -> Any:
        """A DynamoDB client as the functions build it (no botocore retries: the store's own)."""
        return boto3.client(
            "dynamodb",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=CLIENT_CONFIG,
        )

    def store(self) -> DynamoRaceStore:
        """A store with its own client, retrying quickly (the faults are few and short)."""
        return DynamoRaceStore(self.client(), self.table, retry=RetryPolicy(max_attempts=10, base_delay=0.01))

    def bests(self, class_id: int = CLASS) -> dict[int, tuple[int, int]]:
        """Every stored best of the class: racerId -> (best in ten-thousandths, raceId)."""
        client = self.client()
        found: dict[int, tuple[int, int]] = {}
        query: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :pb)",
            "ExpressionAttributeValues": {":pk": {"S": f"CLASS#{class_id}"}, ":pb": {"S": "PB#"}},
        }
        while True:
            page = client.query(**query)
            for item in page["Items"]:
                found[int(item["racerId"]["N"])] = (personal_best_total(item), int(item["raceId"]["N"]))
            if "LastEvaluatedKey" not in page:
                return found
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def stop(self) -> None:
        """Shut the server down."""
        self._server.shutdown()
        self._thread.join(timeout=10)


@pytest.fixture
def moto() -> Iterator[MotoServer]:
    server = MotoServer()
    try:
        yield server
    finally:
        server.stop()


def result(racer: int, total: int, race: int) -> FinalResult:
    return FinalResult(CLASS, racer, f"Racer {racer}", race, total, datetime.now(UTC))


def test_concurrent_offers_keep_the_best_of_each_racer(moto: MotoServer) -> None:
    # Given four races of the class finishing at once, each with its own total per racer, and every
    # write held long enough that all four have read the (missing) bests before any write lands
    racers = range(1, 61)
    totals = {race: {r: 1_000_000 + (r * 7919 * race) % 90_000 for r in racers} for race in range(1, 5)}
    moto.faults.add(Latency("dynamodb", {"PutItem"}, delay_s=0.3))
    stores = {race: moto.store() for race in totals}
    improved: dict[int, int] = {}

    def offer(race: int) -> None:
        improved[race] = stores[race].record_results([result(r, t, race) for r, t in totals[race].items()])

    # When they all offer their results concurrently
    threads = [threading.Thread(target=offer, args=(race,)) for race in totals]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then each racer keeps the highest total and the race that set it, whatever the write order
    expected = {r: max((totals[race][r], race) for race in totals) for r in racers}
    assert moto.bests() == expected
    assert sum(improved.values()) >= len(racers)  # at least the winning write of each racer landed


def test_a_window_that_crashes_before_its_bucket_writes_has_offered_every_best(moto: MotoServer) -> None:
    # Given a 250-racer race (three buckets) whose final window fails at its first bucket write
    race = 9_100_001
    store = moto.store()
    before = RaceDelta(race_id=race, class_id=CLASS, messages=250, first_device_ts=1, last_device_ts=1)
    final = RaceDelta(race_id=race, class_id=CLASS, messages=250, first_device_ts=2, last_device_ts=2)
    for r in range(1, 251):
        before.racers[r] = RacerDelta(f"Racer {r}", {1: 10_000 * r})
        final.racers[r] = RacerDelta(f"Racer {r}", {2: 20_000}, 2)
    store.merge(before)
    crash = moto.faults.add(
        ErrorResponse(
            "dynamodb", {"PutItem"}, status=400, code="ValidationException", body_contains="BUCKET#", limit=1
        )
    )
    with pytest.raises(Exception, match="ValidationException"):
        store.merge(final)
    # Then every finished racer's best was offered before any bucket could record the finish
    assert crash.injected == 1
    finished_totals = {r: (10_000 * r + 20_000, race) for r in range(1, 251)}
    assert moto.bests() == finished_totals
    # And the retry of the window (the mapping's, with the same state) finishes the race, bests unchanged
    outcome = store.merge(final)
    assert outcome.race.status == "final" and outcome.race.finished_racers == 250
    assert {s.racer_id: s.total for s in store.load_scores(race)} == {
        r: t for r, (t, _) in finished_totals.items()
    }
    assert moto.bests() == finished_totals


def test_throttled_and_partial_reads_skip_no_needed_write(moto: MotoServer) -> None:
    # Given stored bests for 300 racers: the even ones above what they will score, the odd below
    store = moto.store()
    store.record_results([result(r, 2_000_000 if r % 2 == 0 else 500_000, 1) for r in range(1, 301)])
    # And reads that are throttled, then come back with a share of their keys unprocessed, and
    # writes that are throttled now and then
    throttled = moto.faults.add(ErrorResponse("dynamodb", {"BatchGetItem"}, limit=2))
    partial = moto.faults.add(UnprocessedKeys("dynamodb", rate=0.5, limit=200))
    slow_writes = moto.faults.add(
        ErrorResponse(
            "dynamodb", {"PutItem"}, code="ProvisionedThroughputExceededException", rate=0.2, limit=40
        )
    )
    # When a second race offers 1,000,000 for every racer
    improved = store.record_results([result(r, 1_000_000, 2) for r in range(1, 301)])
    # Then exactly the odd racers improved, and every racer holds the higher of the two
    assert throttled.injected == 2 and partial.injected > 0 and slow_writes.injected > 0
    assert improved == 150
    assert moto.bests() == {r: (2_000_000, 1) if r % 2 == 0 else (1_000_000, 2) for r in range(1, 301)}


def test_a_replayed_offer_reads_and_writes_nothing_new(moto: MotoServer) -> None:
    # Given a race's results offered once
    store = moto.store()
    results = [result(r, 1_000_000 + r, 3) for r in range(1, 151)]
    assert store.record_results(results) == 150
    writes_before = moto.faults.calls_to("dynamodb", "PutItem")
    # When the same results are offered again (a retried window)
    assert store.record_results(results) == 0
    # Then nothing is written: the read showed every best already held
    assert moto.faults.calls_to("dynamodb", "PutItem") == writes_before
    assert moto.bests() == {r: (1_000_000 + r, 3) for r in range(1, 151)}


def test_bests_written_in_hundredths_before_scales_existed_are_compared_in_their_unit(
    moto: MotoServer,
) -> None:
    # Given two bests stored the old way: no scale, in hundredths
    client = moto.client()
    for racer in (1, 2):
        client.put_item(
            TableName=moto.table,
            Item={
                "pk": {"S": f"CLASS#{CLASS}"},
                "sk": {"S": f"PB#{racer:012d}"},
                "best": {"N": "15000"},  # hundredths: 150.00 in output units, 1,500,000 e4
                "raceId": {"N": "1"},
                "racerId": {"N": str(racer)},
            },
        )
    # When racer 1 scores below it and racer 2 above (the read of a legacy best is 100 times low)
    improved = moto.store().record_results([result(1, 1_400_000, 2), result(2, 1_600_000, 2)])
    # Then only racer 2's best is replaced, now in ten-thousandths
    assert improved == 1
    assert moto.bests() == {1: (1_500_000, 1), 2: (1_600_000, 2)}
