"""KPL aggregation: the producer packs per partition key; helpers de-aggregate; the AWS library agrees."""

from __future__ import annotations

import base64
import hashlib
import zlib
from collections import defaultdict

import pytest
from aws_kinesis_agg.deaggregator import iter_deaggregate_records
from hypothesis import given
from hypothesis import strategies as st

from producers import KinesisProducer
from producers.aggregation import PartitionAggregator
from streamformat import (
    BATCH_MAGIC,
    BATCH_VERSION,
    MAGIC,
    MAX_BATCH_BYTES,
    CorruptBatchError,
    deaggregate,
    decode_batch,
    encode_aggregated,
    encode_batch,
    is_aggregated,
    read_messages,
)
from tests.unit.test_producer import StubKinesis, make_producer


def message(race: int, i: int) -> bytes:
    return b'{"event":"update","second":%d,"raceId":%d,"racerId":%d,"cadence":70,"resistance":50}' % (
        i,
        race,
        i,
    )


def test_aggregated_round_trip_keeps_each_race_together_and_in_order():
    # Given 3 races' messages interleaved
    stub = StubKinesis()
    sent: dict[str, list[bytes]] = defaultdict(list)
    with make_producer(stub, aggregate=True, aggregation_max_bytes=4096, max_in_flight=1) as producer:
        for i in range(900):
            race = 5400800 + i % 3
            producer.put(message(race, i), race)
            sent[str(race)].append(message(race, i))
    # Then far fewer Kinesis records travel, each aggregated and keyed by its race
    assert 3 < len(stub.accepted) < 900 / 10
    received: dict[str, list[bytes]] = defaultdict(list)
    for record in stub.accepted:
        assert is_aggregated(record["Data"])
        assert len(record["Data"]) + len(record["PartitionKey"]) <= 4096 + 16
        for user in deaggregate(record["Data"]):
            # one race per aggregated record: partition-key semantics hold
            assert b'"raceId":%s' % record["PartitionKey"].encode() in user
            received[record["PartitionKey"]].append(user)
    assert received == sent  # every message once, in put order within its race
    stats = producer.stats()
    assert stats.sent == 900 and stats.kinesis_records == len(stub.accepted)


def test_official_deaggregator_reads_what_the_producer_writes():
    stub = StubKinesis()
    with make_producer(stub, aggregate=True) as producer:
        for i in range(50):
            producer.put(message(1, i), "1")
    boto_records = [{**r, "SequenceNumber": "1", "ApproximateArrivalTimestamp": 0} for r in stub.accepted]
    users = list(iter_deaggregate_records(boto_records, data_format="Boto3"))
    assert [base64.b64decode(u["kinesis"]["data"]) for u in users] == [message(1, i) for i in range(50)]
    assert {u["kinesis"]["partitionKey"] for u in users} == {"1"}


def test_aggregation_is_off_by_default():
    stub = StubKinesis()
    with make_producer(stub) as producer:
        producer.put(message(1, 1), "1")
    assert stub.accepted[0]["Data"] == message(1, 1)
    assert not producer.aggregate


def test_failed_aggregated_record_reports_its_user_records():
    stub = StubKinesis(lambda _call, _record: "AccessDeniedException")
    producer = make_producer(stub, aggregate=True)
    for i in range(20):
        producer.put(message(2, i), "2")
    result = producer.close()
    assert len(stub.calls) == 1 and len(stub.calls[0]) == 1
    assert [f.data for f in result.failed] == [message(2, i) for i in range(20)]
    assert producer.stats().failed == 20


def test_record_too_big_to_aggregate_goes_plain_after_its_race_so_far():
    stub = StubKinesis()
    big = b"B" * 3000
    with make_producer(stub, aggregate=True, aggregation_max_bytes=1024, max_in_flight=1) as producer:
        producer.put(b"first", "7")
        producer.put(big, "7")
        producer.put(b"last", "7")
    payloads = [user for record in stub.accepted for user in deaggregate(record["Data"])]
    assert payloads == [b"first", big, b"last"]
    assert stub.accepted[1]["Data"] == big  # plain


def test_deaggregate_plain_and_damaged_records_return_them_whole():
    plain = b'{"event":"update"}'
    assert not is_aggregated(plain)
    assert deaggregate(plain) == [plain]
    packed = encode_aggregated("1", [b"a", b"b"])
    assert is_aggregated(packed) and deaggregate(packed) == [b"a", b"b"]
    damaged = packed[:-1] + bytes([packed[-1] ^ 1])  # digest no longer matches
    assert not is_aggregated(damaged)
    assert deaggregate(damaged) == [damaged]
    # Magic and a valid digest around garbage protobuf: still not lost
    body = b"\xff\xff\xff"
    garbage = MAGIC + body + hashlib.md5(body).digest()
    assert deaggregate(garbage) == [garbage]


@given(st.lists(st.binary(max_size=300), min_size=1, max_size=40), st.text(min_size=1, max_size=20))
def test_encode_deaggregate_round_trip(payloads: list[bytes], key: str):
    assert deaggregate(encode_aggregated(key, payloads)) == payloads


def test_partition_aggregator_finishes_records_at_the_size_bound():
    aggregator = PartitionAggregator(max_bytes=500)
    finished = []
    for i in range(100):
        done, accepted = aggregator.add("k", b"x" * 40, now=float(i))
        assert accepted
        finished += done
    finished += aggregator.drain()
    assert all(len(r.data) <= 500 for r in finished)
    assert sum(len(r.user_records) for r in finished) == 100
    assert finished[1].opened_at > finished[0].opened_at
    with pytest.raises(ValueError):
        PartitionAggregator(max_bytes=0)


def test_large_aggregation_size_is_capped_by_the_record_limit():
    stub = StubKinesis()
    with KinesisProducer("races", client=stub, aggregate=True, aggregation_max_bytes=1024 * 1024) as producer:
        for i in range(3000):
            producer.put(b"y" * 1000 + str(i).encode(), "k" * 200)
    assert all(len(r["Data"]) + len(r["PartitionKey"]) <= 1024 * 1024 for r in stub.accepted)
    assert sum(len(deaggregate(r["Data"])) for r in stub.accepted) == 3000


# -- compressed batches ------------------------------------------------------------------------------

json_lines = st.lists(st.binary(max_size=200).filter(lambda b: b"\n" not in b), min_size=1, max_size=60)


@given(json_lines)
def test_compressed_batch_round_trip(payloads: list[bytes]):
    batch = encode_batch(payloads)
    assert batch[:5] == BATCH_MAGIC + bytes([BATCH_VERSION])
    assert decode_batch(batch) == payloads
    # Inside a KPL aggregate, or on its own, consumers read the same messages
    assert read_messages(encode_aggregated("k", [batch])) == payloads
    assert read_messages(batch) == payloads


def test_read_messages_leaves_plain_and_kpl_records_as_they_were():
    assert read_messages(b'{"a":1}') == [b'{"a":1}']
    assert read_messages(encode_aggregated("1", [b"a", b"b"])) == [b"a", b"b"]


def test_compressed_batches_refuse_what_they_cannot_carry():
    with pytest.raises(ValueError, match="newline"):
        encode_batch([b'{"a":\n1}'])
    with pytest.raises(ValueError):
        encode_batch([])


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (BATCH_MAGIC + b"\x02" + zlib.compress(b"{}"), "version 2"),
        (BATCH_MAGIC, "version None"),
        (BATCH_MAGIC + b"\x01" + b"not zlib", "damaged"),
        (BATCH_MAGIC + b"\x01" + zlib.compress(b"{}")[:-3], "truncated"),
        (BATCH_MAGIC + b"\x01" + zlib.compress(b"{}") + b"x", "after the end"),
        (BATCH_MAGIC + b"\x01" + zlib.compress(bytes(MAX_BATCH_BYTES + 1)), "inflates past"),
    ],
)
def test_unreadable_compressed_batches_raise_a_clear_error(data: bytes, reason: str):
    with pytest.raises(CorruptBatchError, match=reason):
        read_messages(data)


def test_compressing_producer_packs_far_more_messages_per_byte():
    # Given the same 3,000 messages sent KPL-aggregated, plain and compressed
    messages = [message(7, i) for i in range(3000)]
    sizes = {}
    received = {}
    for compress in (False, True):
        stub = StubKinesis()
        with make_producer(stub, aggregate=True, compress=compress, max_in_flight=1) as producer:
            for m in messages:
                producer.put(m, 7)
        assert producer.last_result is not None and producer.last_result.ok
        sizes[compress] = sum(len(r["Data"]) for r in stub.accepted)
        assert all(len(r["Data"]) <= 51_200 for r in stub.accepted)
        received[compress] = [m for r in stub.accepted for m in read_messages(r["Data"])]
    # Then consumers read the very same messages, in order, from a several times smaller stream
    assert received[True] == received[False] == messages
    assert sizes[True] * 4 < sizes[False]


def test_a_message_with_a_newline_goes_plain_after_its_race_so_far():
    aggregator = PartitionAggregator(compress=True)
    assert aggregator.add("k", b'{"a":1}')[1]
    finished, accepted = aggregator.add("k", b'{"a":\n2}')
    assert not accepted
    assert [read_messages(r.data) for r in finished] == [[b'{"a":1}']]
    assert [r.user_records for r in finished] == [(b'{"a":1}',)]


def test_compress_needs_aggregation():
    with pytest.raises(ValueError, match="aggregate"):
        KinesisProducer("races", client=StubKinesis(), compress=True)
