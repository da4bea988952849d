"""The aggregator against moto, with canonical Kinesis and tumbling-window events."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import boto3
import orjson
import pytest
from moto import mock_aws

from consumers.aggregator import handler as aggregator_handler
from consumers.aggregator.core import WindowAggregator
from consumers.quarantine import SqsQuarantine
from consumers.settings import aggregator_settings
from leaderboard.adapters.dynamodb import DynamoRaceStore
from leaderboard.domain import RaceDelta, RacerMessage, e4_to_output, rank_scores
from streamformat import encode_aggregated, encode_batch
from tests.support.events import kinesis_event, kinesis_record, window_event
from tests.support.oracle import js_output_e4
from tests.support.tables import create_races_table

RACE = 5_400_802


def message(racer: int, second: int, *, event: str = "update", race: int = RACE) -> dict[str, Any]:
    return {
        "event": event,
        "deviceTimestamp": 1_700_000_000_000 + second * 1000,
        "second": second,
        "raceId": race,
        "name": f"Racer {racer}",
        "racerId": racer,
        "classId": 3,
        "cadence": 40 + (racer * 7 + second) % 50,
        "resistance": 35 + (racer * 3 + second * 5) % 50,
    }


def output(racer: int, second: int) -> int:
    m = message(racer, second)
    return js_output_e4(m["cadence"], m["resistance"])


class Stack:
    def __init__(self) -> None:
        self.ddb = boto3.client("dynamodb", region_name="us-east-1")
        self.sqs = boto3.client("sqs", region_name="us-east-1")
        self.table = create_races_table(self.ddb)
        self.queue_url = self.sqs.create_queue(QueueName="failures")["QueueUrl"]
        self.store = DynamoRaceStore(self.ddb, self.table)
        self.aggregator = WindowAggregator(
            self.store, SqsQuarantine(self.sqs, self.queue_url).send, 768 * 1024
        )

    def quarantined(self) -> list[dict[str, Any]]:
        bodies = []
        while True:
            got = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
            if not got.get("Messages"):
                return bodies
            for m in got["Messages"]:
                bodies.append(orjson.loads(m["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])

    def totals(self, race: int = RACE) -> dict[int, int]:
        return {s.racer_id: s.total for s in self.store.load_scores(race)}


@pytest.fixture
def stack() -> Iterator[Stack]:
    with mock_aws():
        yield Stack()


def test_batch_without_window_is_merged_at_once(stack: Stack) -> None:
    event = kinesis_event([message(r, s) for r in (1, 2) for s in (1, 2, 3)])
    response, _ = stack.aggregator.handle(event)
    assert response == {"batchItemFailures": []}
    assert stack.totals() == {r: sum(output(r, s) for s in (1, 2, 3)) for r in (1, 2)}
    race = stack.store.get_race(RACE)
    assert race is not None and race.racers == 2 and race.status == "live"


def test_window_state_carries_between_invocations_and_merges_at_final(stack: Stack) -> None:
    first = window_event(kinesis_event([message(1, 1), message(2, 1)])["Records"], state={})
    response, _ = stack.aggregator.handle(first)
    assert set(response) == {"state", "batchItemFailures"}
    assert stack.store.get_race(RACE) is None  # nothing written before the window ends

    second = window_event(kinesis_event([message(1, 2)], first_seq=2)["Records"], state=response["state"])
    response, _ = stack.aggregator.handle(second)

    final = window_event([], state=response["state"], final=True)
    response, summary = stack.aggregator.handle(final)
    assert response["state"] == {}
    assert stack.totals() == {1: output(1, 1) + output(1, 2), 2: output(2, 1)}
    assert summary.report is not None and summary.report.items_written == 2  # one bucket + the summary


def test_final_invocation_with_records_counts_them_too(stack: Stack) -> None:
    first = window_event(kinesis_event([message(1, 1)])["Records"], state={})
    state = stack.aggregator.handle(first)[0]["state"]
    final = window_event(kinesis_event([message(1, 2)], first_seq=1)["Records"], state=state, final=True)
    stack.aggregator.handle(final)
    assert stack.totals() == {1: output(1, 1) + output(1, 2)}


def test_window_terminated_early_is_merged_and_the_next_window_continues(stack: Stack) -> None:
    first = window_event(kinesis_event([message(1, 1)])["Records"], state={})
    state = stack.aggregator.handle(first)[0]["state"]
    early = window_event([], state=state, final=True, terminated_early=True)
    assert stack.aggregator.handle(early)[0]["state"] == {}
    # Lambda continues the same window with fresh state.
    again = window_event(kinesis_event([message(1, 2), message(1, 1)], first_seq=1)["Records"], state={})
    state = stack.aggregator.handle(again)[0]["state"]
    stack.aggregator.handle(window_event([], state=state, final=True))
    assert stack.totals() == {1: output(1, 1) + output(1, 2)}


def test_state_over_budget_is_written_early(stack: Stack) -> None:
    small = WindowAggregator(stack.store, SqsQuarantine(stack.sqs, stack.queue_url).send, 2048)
    event = window_event(kinesis_event([message(r, 1) for r in range(100)])["Records"], state={})
    response, summary = small.handle(event)
    assert summary.early_flush and response["state"] == {}
    assert len(stack.totals()) == 100


def test_replayed_window_changes_nothing_and_writes_nothing(stack: Stack) -> None:
    records = kinesis_event([message(r, s) for r in range(5) for s in range(1, 4)])["Records"]
    stack.aggregator.handle({"Records": records})
    before = stack.totals()
    version = stack.store.get_race(RACE).version  # type: ignore[union-attr]
    _, summary = stack.aggregator.handle({"Records": list(reversed(records))})
    assert stack.totals() == before
    assert summary.report is not None and summary.report.items_written == 0
    assert stack.store.get_race(RACE).version == version  # type: ignore[union-attr]


def test_malformed_records_are_quarantined_with_payload_and_never_retried(stack: Stack) -> None:
    good = [message(1, 1), message(1, 2)]
    payloads: list[bytes | dict[str, Any]] = [
        good[0],
        b"{broken json",
        {"event": "update", "raceId": RACE},
        {**message(2, 1), "cadence": "fast"},
        good[1],
    ]
    response, summary = stack.aggregator.handle(kinesis_event(payloads))
    assert response["batchItemFailures"] == []  # poison is parked, not retried
    assert summary.poison == 3
    quarantined = stack.quarantined()
    assert "{broken json" in {q["payload"] for q in quarantined}
    assert all(q["reason"] and q["sequenceNumber"] for q in quarantined)
    assert stack.totals() == {1: output(1, 1) + output(1, 2)}


def test_records_are_reported_failed_when_quarantine_is_unavailable(stack: Stack) -> None:
    def refuse(_: object) -> None:
        raise RuntimeError("SQS unavailable")

    aggregator = WindowAggregator(stack.store, refuse, 768 * 1024)
    event = kinesis_event([message(1, 1), b"nope", message(1, 2)])
    response, _ = aggregator.handle(event)
    bad_seq = event["Records"][1]["kinesis"]["sequenceNumber"]
    assert response["batchItemFailures"] == [{"itemIdentifier": bad_seq}]
    assert stack.totals() == {1: output(1, 1) + output(1, 2)}


def test_kpl_aggregated_records_are_deaggregated(stack: Stack) -> None:
    data = encode_aggregated(str(RACE), [orjson.dumps(message(r, 1)) for r in range(10)] + [b"junk"])
    response, summary = stack.aggregator.handle(
        {"Records": [kinesis_record(data, 0, partition_key=str(RACE))]}
    )
    assert response["batchItemFailures"] == []
    assert summary.messages == 10 and summary.poison == 1
    assert stack.quarantined()[0]["subSequenceNumber"] == 10
    assert len(stack.totals()) == 10


def test_final_messages_record_results_and_keep_best(stack: Stack) -> None:
    stack.aggregator.handle(kinesis_event([message(1, 1), message(1, 2, event="final"), message(2, 1)]))
    race = stack.store.get_race(RACE)
    assert race is not None and (race.racers, race.finished_racers, race.status) == (2, 1, "live")
    pb = stack.ddb.get_item(
        TableName=stack.table, Key={"pk": {"S": "CLASS#3"}, "sk": {"S": "PB#000000000001"}}
    )
    assert int(pb["Item"]["best"]["N"]) == output(1, 1) + output(1, 2)

    stack.aggregator.handle(kinesis_event([message(2, 2, event="final")]))
    assert stack.store.get_race(RACE).status == "final"  # type: ignore[union-attr]

    # A worse result in a later race does not replace the personal best.
    stack.aggregator.handle(kinesis_event([message(1, 1, event="final", race=RACE + 1)]))
    pb = stack.ddb.get_item(
        TableName=stack.table, Key={"pk": {"S": "CLASS#3"}, "sk": {"S": "PB#000000000001"}}
    )
    assert int(pb["Item"]["best"]["N"]) == output(1, 1) + output(1, 2)
    assert int(pb["Item"]["raceId"]["N"]) == RACE


class AtomicCalls:
    """Makes each DynamoDB call atomic, as the real service is: moto's in-process backend is not
    thread-safe (a cancelled transaction restores a table snapshot taken before a concurrent write)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return method(*args, **kwargs)

        return call


def test_concurrent_merges_into_one_race_both_land(stack: Stack) -> None:
    # Many writers race between their reads and their conditional writes; versions make all land.
    store = DynamoRaceStore(AtomicCalls(stack.ddb), stack.table)
    deltas = []
    for writer in range(6):
        delta = RaceDelta(race_id=RACE, class_id=3)
        for racer in range(0, 250, 7):
            delta.add(RacerMessage.model_validate(message(racer, writer + 1)))
        deltas.append(delta)
    errors: list[BaseException] = []

    def run(delta: RaceDelta) -> None:
        try:
            store.merge(delta)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(d,)) for d in deltas]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    expected = {r: sum(output(r, s) for s in range(1, 7)) for r in range(0, 250, 7)}
    assert stack.totals() == expected
    assert stack.store.get_race(RACE).racers == len(expected)  # type: ignore[union-attr]


def test_writes_per_window_are_bounded_by_buckets(stack: Stack) -> None:
    racers = 1000
    event = kinesis_event([message(r, 1) for r in range(1, racers + 1)])
    _, summary = stack.aggregator.handle(event)
    assert summary.report is not None
    # racers 1..1000 span buckets 0..10; plus one summary item.
    assert summary.report.items_written <= -(-racers // 100) + 2
    ranked = rank_scores(stack.store.load_scores(RACE))
    assert len(ranked) == racers and e4_to_output(ranked[0].total) > 0


def test_ten_thousand_racers_fit_the_item_limit(stack: Stack) -> None:
    stack.aggregator.handle(kinesis_event([message(r, s) for r in range(10_000) for s in (1,)]))
    assert len(stack.totals()) == 10_000
    race = stack.store.get_race(RACE)
    assert race is not None and race.racers == 10_000


def test_handler_entry_point_uses_its_environment(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, lambda_context: object
) -> None:
    monkeypatch.setenv("TABLE_NAME", stack.table)
    monkeypatch.setenv("FAILURE_QUEUE_URL", stack.queue_url)
    aggregator_settings.cache_clear()
    aggregator_handler.aggregator.cache_clear()
    aggregator_handler.store.cache_clear()
    try:
        response = aggregator_handler.lambda_handler(kinesis_event([message(1, 1)]), lambda_context)  # type: ignore[arg-type]
    finally:
        aggregator_settings.cache_clear()
        aggregator_handler.aggregator.cache_clear()
        aggregator_handler.store.cache_clear()
    assert response == {"batchItemFailures": []}
    assert stack.totals() == {1: output(1, 1)}


class CrashOnBucketPut:
    """Fails the first put of a standings bucket, as a crash right after the personal-best write."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.crashed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def put_item(self, **kwargs: Any) -> Any:
        if not self.crashed and kwargs["Item"]["sk"]["S"].startswith("BUCKET#"):
            self.crashed = True
            raise RuntimeError("crash")
        return self._client.put_item(**kwargs)


def test_a_crash_after_the_personal_best_loses_nothing_on_retry(stack: Stack) -> None:
    crashing = DynamoRaceStore(CrashOnBucketPut(stack.ddb), stack.table)
    delta = RaceDelta(race_id=RACE, class_id=3)
    for m in (message(1, 1), message(1, 2, event="final")):
        delta.add(RacerMessage.model_validate(m))
    with pytest.raises(RuntimeError):
        crashing.merge(delta)
    outcome = crashing.merge(delta)  # Lambda's retry of the same batch
    assert outcome.race.finished_racers == 1
    assert stack.totals() == {1: output(1, 1) + output(1, 2)}
    pb = stack.ddb.get_item(
        TableName=stack.table, Key={"pk": {"S": "CLASS#3"}, "sk": {"S": "PB#000000000001"}}
    )
    assert int(pb["Item"]["best"]["N"]) == output(1, 1) + output(1, 2)


def compressed_record(payloads: list[bytes]) -> bytes:
    """A KPL aggregate holding one compressed batch, as KinesisProducer(compress=True) writes it."""
    return encode_aggregated(str(RACE), [encode_batch(payloads)])


def test_compressed_batches_are_read_like_plain_messages(stack: Stack) -> None:
    # Given the same 200 messages, once compressed in two records and once as plain records
    messages = [orjson.dumps(message(r, s)) for r in range(100) for s in (1, 2)]
    records = [
        kinesis_record(compressed_record(messages[:150]), 0, partition_key=str(RACE)),
        kinesis_record(encode_batch(messages[150:]), 1, partition_key=str(RACE)),  # no KPL frame
    ]
    # When the aggregator reads them
    response, summary = stack.aggregator.handle({"Records": records})
    # Then every message counts exactly as if sent plain
    assert response["batchItemFailures"] == []
    assert (summary.messages, summary.poison) == (200, 0)
    assert stack.totals() == {r: output(r, 1) + output(r, 2) for r in range(100)}


def test_a_bad_message_inside_a_compressed_batch_is_parked_alone(stack: Stack) -> None:
    payloads = [orjson.dumps(message(r, 1)) for r in range(5)]
    payloads.insert(3, b'{"event":"update","raceId":1}')
    event = {"Records": [kinesis_record(compressed_record(payloads), 0, partition_key=str(RACE))]}
    response, summary = stack.aggregator.handle(event)
    assert response["batchItemFailures"] == []
    assert (summary.messages, summary.poison) == (5, 1)
    parked = stack.quarantined()
    assert parked[0]["payload"] == '{"event":"update","raceId":1}' and parked[0]["subSequenceNumber"] == 3
    assert len(stack.totals()) == 5


def test_a_damaged_compressed_batch_is_parked_whole_and_the_rest_counts(stack: Stack) -> None:
    batch = encode_batch([orjson.dumps(message(r, 1)) for r in range(5)])
    damaged = batch[:-6] + bytes(6)  # the zlib stream's end and Adler-32 check no longer match
    records = [
        kinesis_record(orjson.dumps(message(9, 1)), 0, partition_key=str(RACE)),
        kinesis_record(encode_aggregated(str(RACE), [damaged]), 1, partition_key=str(RACE)),
    ]
    response, summary = stack.aggregator.handle({"Records": records})
    assert response["batchItemFailures"] == []
    assert (summary.messages, summary.poison) == (1, 1)
    assert "compressed batch" in stack.quarantined()[0]["reason"]
    assert stack.totals() == {9: output(9, 1)}
