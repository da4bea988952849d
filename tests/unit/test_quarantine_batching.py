"""Parking poison in batches: SendMessageBatch within SQS's limits, a cap per record, refused entries.

Against moto's SQS (and DynamoDB for the aggregator), counting the calls the client really makes.
"""

from __future__ import annotations

import base64
import hashlib
import math
import random
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from moto import mock_aws

from consumers.aggregator.core import WindowAggregator
from consumers.quarantine import (
    MAX_BATCH_ENTRIES,
    MAX_BATCH_REQUEST_BYTES,
    MAX_MESSAGE_BYTES,
    MAX_PARKED_PER_RECORD,
    PoisonRecord,
    QuarantineError,
    SqsQuarantine,
    batch_requests,
    quarantine_body,
)
from leaderboard.retry import RetryPolicy
from streamformat import encode_aggregated, encode_batch
from tests.support.events import kinesis_record
from tests.unit.test_aggregator_handler import RACE, Stack, message, output


class SqsCalls:
    """Every SQS call the client makes, with its parameters (botocore's provide-client-params hook)."""

    def __init__(self, sqs: Any) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        sqs.meta.events.register("provide-client-params.sqs.*", self._record)

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls.append((model.name, dict(params)))

    def batches(self) -> list[list[dict[str, Any]]]:
        """The entries of each SendMessageBatch call; no poison went out any other way."""
        sends = [name for name, _ in self.calls if name.startswith("Send")]
        assert set(sends) <= {"SendMessageBatch"}, sends
        return [params["Entries"] for name, params in self.calls if name == "SendMessageBatch"]


@pytest.fixture
def stack() -> Iterator[Stack]:
    with mock_aws():
        yield Stack()


def poison(payload: bytes, sub: int | None = None) -> PoisonRecord:
    return PoisonRecord(
        payload=payload,
        reason="bad",
        source="kinesis",
        event_source_arn="arn:aws:kinesis:us-east-1:123456789012:stream/races",
        partition_key=str(RACE),
        sequence_number="4959",
        sub_sequence=sub,
    )


def bad_line(i: int) -> bytes:
    return orjson.dumps({**message(i, 1), "cadence": f"fast-{i}"})


def test_2000_bad_lines_in_one_record_park_at_most_the_cap_plus_one_in_few_calls(stack: Stack) -> None:
    # Given one compressed record of 2,000 bad lines among 50 good ones, and a good plain record
    lines = [bad_line(i) for i in range(2000)]
    good = [orjson.dumps(message(r, 1)) for r in range(50)]
    lines[1000:1000] = good
    data = encode_aggregated(str(RACE), [encode_batch(lines)])
    records = [
        kinesis_record(data, 0, partition_key=str(RACE)),
        kinesis_record(orjson.dumps(message(99, 1)), 1, partition_key=str(RACE)),
    ]
    calls = SqsCalls(stack.sqs)
    # When the aggregator handles the batch
    response, summary = stack.aggregator.handle({"Records": records})
    # Then nothing is retried, and every good message counts
    assert response["batchItemFailures"] == []
    assert stack.totals() == {r: output(r, 1) for r in [*range(50), 99]}
    assert summary.poison == 2000  # the metric counts every malformed message
    # And the record parked its first 100 bad messages one by one, then itself once for the rest
    batches = calls.batches()
    entries = [entry for batch in batches for entry in batch]
    assert len(entries) == MAX_PARKED_PER_RECORD + 1
    assert len(batches) <= math.ceil(len(entries) / MAX_BATCH_ENTRIES)
    assert all(len(b) <= MAX_BATCH_ENTRIES for b in batches)
    assert all(sum(len(e["MessageBody"].encode()) for e in b) <= MAX_BATCH_REQUEST_BYTES for b in batches)
    parked = stack.quarantined()
    assert len(parked) == MAX_PARKED_PER_RECORD + 1
    singles = sorted(
        (p for p in parked if p["moreMalformedMessages"] is None), key=lambda p: p["subSequenceNumber"]
    )
    assert [p["payload"].encode() for p in singles] == lines[:MAX_PARKED_PER_RECORD]
    assert [p["subSequenceNumber"] for p in singles] == list(range(MAX_PARKED_PER_RECORD))
    (rest,) = [p for p in parked if p["moreMalformedMessages"] is not None]
    assert rest["reason"] == "1900 more malformed messages in this record"
    assert rest["moreMalformedMessages"] == 1900 and rest["subSequenceNumber"] is None
    assert rest["payloadEncoding"] == "base64" and base64.b64decode(rest["payload"]) == data
    assert rest["payloadSha256"] == hashlib.sha256(data).hexdigest()


def test_a_record_over_the_bounds_is_parked_once_whole_and_the_batch_goes_on(stack: Stack) -> None:
    # Given a hostile ~1 MiB record (255 batches of 2**21 lines) between two good records
    bomb = encode_aggregated(str(RACE), [encode_batch([b"x"] * 2**21)] * 255)
    records = [
        kinesis_record(orjson.dumps(message(1, 1)), 0, partition_key=str(RACE)),
        kinesis_record(bomb, 1, partition_key=str(RACE)),
        kinesis_record(orjson.dumps(message(2, 1)), 2, partition_key=str(RACE)),
    ]
    calls = SqsCalls(stack.sqs)
    response, summary = stack.aggregator.handle({"Records": records})
    # Then it is not reported as failed (it can never succeed), and the good records count
    assert response["batchItemFailures"] == []
    assert stack.totals() == {1: output(1, 1), 2: output(2, 1)}
    # And it is parked once, whole (truncated for SQS, with its digest and size), with its reason
    assert len(calls.batches()) == 1
    (parked,) = stack.quarantined()
    assert parked["reason"] == "record expands past 131072 messages (the bound for one Kinesis record)"
    assert parked["truncated"] and parked["payloadBytes"] == len(bomb)
    assert parked["payloadSha256"] == hashlib.sha256(bomb).hexdigest()
    assert summary.poison == 1


def test_bodies_always_fit_one_sqs_message_whatever_the_payload() -> None:
    rnd = random.Random(3)
    payloads = {
        "binary": rnd.randbytes(1024 * 1024),  # base64 would be 4/3 of the kept 200 KiB
        "control characters": b"\x01" * 300_000,  # valid UTF-8, but 6 bytes each once escaped
        "text cut inside a character": "é".encode() * 150_000,
        "small": b"{not json",
    }
    for what, payload in payloads.items():
        body = quarantine_body(poison(payload))
        parsed = orjson.loads(body)
        assert len(body.encode()) <= MAX_MESSAGE_BYTES, what
        assert parsed["payloadBytes"] == len(payload), what
        assert parsed["payloadSha256"] == hashlib.sha256(payload).hexdigest(), what
        kept = (
            parsed["payload"].encode()
            if parsed["payloadEncoding"] == "utf-8"
            else base64.b64decode(parsed["payload"])
        )
        assert payload.startswith(kept) and parsed["truncated"] == (kept != payload), what
    assert (
        orjson.loads(quarantine_body(poison(payloads["text cut inside a character"])))["payloadEncoding"]
        == "utf-8"
    )


def test_batch_requests_keep_order_within_10_entries_and_256_kib() -> None:
    sizes = [10, 200_000, 100_000, 5, 60_000, 62_000, *[1000] * 25, 250_000, 7]
    bodies = ["x" * size for size in sizes]
    requests = list(batch_requests(bodies))
    assert [e["MessageBody"] for r in requests for e in r] == bodies
    assert all(len(r) <= MAX_BATCH_ENTRIES for r in requests)
    assert all(sum(len(e["MessageBody"]) for e in r) <= MAX_BATCH_REQUEST_BYTES for r in requests)
    assert all(len({e["Id"] for e in r}) == len(r) for r in requests)


class FlakySqs:
    """A real (moto) SQS client whose SendMessageBatch refuses chosen entries on chosen attempts."""

    def __init__(self, sqs: Any, refuse: dict[int, set[int]], sender_fault: bool = False) -> None:
        self._sqs = sqs
        self._refuse = refuse  # attempt number -> positions in that call's entries
        self._sender_fault = sender_fault
        self.attempts: list[list[str]] = []

    def send_message_batch(self, **params: Any) -> dict[str, Any]:
        entries: list[dict[str, str]] = params["Entries"]
        self.attempts.append([e["Id"] for e in entries])
        refused = self._refuse.get(len(self.attempts), set())
        accepted = [e for i, e in enumerate(entries) if i not in refused]
        response = (
            self._sqs.send_message_batch(QueueUrl=params["QueueUrl"], Entries=accepted) if accepted else {}
        )
        failed = [
            {"Id": e["Id"], "SenderFault": self._sender_fault, "Code": "InternalError"}
            for i, e in enumerate(entries)
            if i in refused
        ]
        return {"Successful": response.get("Successful", []), "Failed": failed}


def test_entries_refused_in_a_batch_response_are_retried_alone(stack: Stack) -> None:
    # Given SQS refusing 3 of the 10 entries, then 1 of those 3 again
    flaky = FlakySqs(stack.sqs, {1: {2, 5, 9}, 2: {0}})
    sleeps: list[float] = []
    quarantine = SqsQuarantine(flaky, stack.queue_url, sleep=sleeps.append)
    records = [poison(b"bad %d" % i, sub=i) for i in range(10)]
    # When they are parked
    quarantine.send(records)
    # Then only the refused entries were sent again, and every record is parked exactly once
    assert flaky.attempts == [[str(i) for i in range(10)], ["2", "5", "9"], ["2"]]
    assert len(sleeps) == 2
    assert sorted(p["payload"] for p in stack.quarantined()) == sorted(f"bad {i}" for i in range(10))


def test_entries_still_refused_fail_the_record_so_the_mapping_retries_it(stack: Stack) -> None:
    # Given SQS refusing one entry on every attempt
    flaky = FlakySqs(stack.sqs, {n: {0} for n in range(1, 10)})
    quarantine = SqsQuarantine(flaky, stack.queue_url, RetryPolicy(max_attempts=3), sleep=lambda _: None)
    aggregator = WindowAggregator(stack.store, quarantine.send, 768 * 1024)
    event = {
        "Records": [
            kinesis_record(orjson.dumps(message(1, 1)), 0, partition_key=str(RACE)),
            kinesis_record(b"nope", 1, partition_key=str(RACE)),
        ]
    }
    # When the aggregator parks the bad record
    response, _ = aggregator.handle(event)
    # Then after 3 attempts the record is reported failed (retried by the mapping), the good one counts
    assert len(flaky.attempts) == 3
    assert response["batchItemFailures"] == [
        {"itemIdentifier": event["Records"][1]["kinesis"]["sequenceNumber"]}
    ]
    assert stack.totals() == {1: output(1, 1)}


def test_entries_refused_for_the_senders_fault_are_not_retried(stack: Stack) -> None:
    flaky = FlakySqs(stack.sqs, {1: {1}}, sender_fault=True)
    with pytest.raises(QuarantineError, match="refused 1 entries"):
        SqsQuarantine(flaky, stack.queue_url, sleep=lambda _: None).send([poison(b"a"), poison(b"b")])
    assert len(flaky.attempts) == 1


def test_one_record_is_still_accepted_alone(stack: Stack) -> None:
    # The quarantine's earlier callers pass one record at a time.
    SqsQuarantine(stack.sqs, stack.queue_url).send(poison(b"{broken"))
    (parked,) = stack.quarantined()
    assert parked["payload"] == "{broken" and parked["moreMalformedMessages"] is None
