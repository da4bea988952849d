"""What one Kinesis record may expand to: the decompression-bomb bounds of streamformat.read_messages.

The hostile record of the issue: 1,046,033 bytes, a KPL aggregate of 255 compressed batches, each
~4 KB inflating to 4 MiB of ``x`` lines — 534,773,760 messages, 4.1 GB once decoded. Here the same
shapes are built small with injected bounds, and once at full size against the real bounds, where
decoding must stop at the bound having allocated little.
"""

from __future__ import annotations

import tracemalloc
import zlib
from functools import cache

import orjson
import pytest

from producers.aggregation import PartitionAggregator
from simulator import all_race_messages, plan_races
from streamformat import (
    BATCH_MAGIC,
    BATCH_VERSION,
    MAX_RECORD_BYTES,
    MAX_RECORD_INFLATED_BYTES,
    MAX_RECORD_MESSAGES,
    BatchTooLargeError,
    CorruptBatchError,
    RecordBounds,
    RecordTooLargeError,
    batch_lines,
    deaggregate,
    encode_aggregated,
    encode_batch,
    read_messages,
)
from streamformat.bounds import ExpansionBudget

SMALL = RecordBounds(max_bytes=1000, max_messages=100)


def raw_batch(lines: bytes) -> bytes:
    """A compressed batch of exactly these inflated bytes (encode_batch refuses some shapes)."""
    return BATCH_MAGIC + bytes([BATCH_VERSION]) + zlib.compress(lines, 9)


@cache
def issue_bomb() -> bytes:
    """The issue's record, at full size: a KPL aggregate of 255 batches of 2**21 ``x`` lines."""
    batch = encode_batch([b"x"] * 2**21)
    record = encode_aggregated("5400802", [batch] * 255)
    assert 1_000_000 < len(record) <= MAX_RECORD_BYTES
    return record


# -- exactly at the bound vs one over ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "messages"),
    [
        # a compressed batch on its own: 100 lines
        (raw_batch(b"\n".join([b"m"] * 100)), 100),
        # a KPL aggregate of plain messages: 100 user records
        (encode_aggregated("k", [b"m"] * 100), 100),
        # nested: an aggregate of batches and plain messages, 100 messages over all of them
        (
            encode_aggregated(
                "k", [raw_batch(b"\n".join([b"m"] * 40)), b"m", raw_batch(b"\n".join([b"m"] * 59))]
            ),
            100,
        ),
    ],
    ids=["batch", "kpl-of-plain", "kpl-of-batches-and-plain"],
)
def test_a_record_of_exactly_the_bound_of_messages_is_read_and_one_more_is_refused(
    record: bytes, messages: int
) -> None:
    # Given a record holding exactly the bound's number of messages, in any nesting
    assert len(read_messages(record, SMALL)) == messages
    # When one more message sits in it (another user record, or another line of its last batch)
    if record.startswith(BATCH_MAGIC):
        over = raw_batch(b"\n".join([b"m"] * 101))
    else:
        over = encode_aggregated("k", [*deaggregate(record), b"m"])
    # Then reading it stops with the bound as the reason
    with pytest.raises(RecordTooLargeError, match="past 100 messages"):
        read_messages(over, SMALL)


def test_inflated_bytes_are_bounded_over_all_the_batches_and_payloads_of_a_record() -> None:
    bounds = RecordBounds(max_bytes=1000, max_messages=1000)
    # Given 600 inflated bytes in one batch, 300 in another and a 100-byte plain message: exactly 1,000
    first, second, plain = raw_batch(b"a" * 600), raw_batch(b"b" * 300), b"c" * 100
    assert [len(m) for m in read_messages(encode_aggregated("k", [first, second, plain]), bounds)] == [
        600,
        300,
        100,
    ]
    # Then one byte more anywhere is over: in a batch, or in the plain message
    with pytest.raises(RecordTooLargeError, match="past 1000 bytes"):
        read_messages(encode_aggregated("k", [first, raw_batch(b"b" * 301), plain]), bounds)
    with pytest.raises(RecordTooLargeError, match="past 1000 bytes"):
        read_messages(encode_aggregated("k", [first, second, plain + b"c"]), bounds)
    # And a batch on its own: exactly the bound, then one over
    assert read_messages(raw_batch(b"z" * 1000), bounds) == [b"z" * 1000]
    with pytest.raises(BatchTooLargeError, match="inflates past 1000 bytes"):
        read_messages(raw_batch(b"z" * 1001), bounds)


def test_a_batch_over_the_bound_is_both_a_corrupt_batch_and_a_record_too_large() -> None:
    # Consumers that park corrupt batches keep doing so; new ones can tell the bound apart.
    with pytest.raises(BatchTooLargeError) as caught:
        read_messages(raw_batch(b"\n" * 200), SMALL)
    assert isinstance(caught.value, CorruptBatchError)
    assert isinstance(caught.value, RecordTooLargeError)


def test_the_budget_is_one_per_record_not_one_per_batch() -> None:
    # Given many batches each well under the bounds (the shape of the issue's bomb, scaled down)
    batch = raw_batch(b"\n".join([b"x"] * 30))
    record = encode_aggregated("k", [batch] * 255)
    # Then each alone is fine, but the record of them all is over after its fourth batch
    assert len(read_messages(batch, SMALL)) == 30
    with pytest.raises(RecordTooLargeError, match="past 100 messages"):
        read_messages(record, SMALL)


def test_inflating_stops_at_the_bound_instead_of_inflating_first() -> None:
    # Given a budget with 10 bytes left and a batch that inflates to 1 MiB
    budget = ExpansionBudget(RecordBounds(max_bytes=10, max_messages=10))
    with pytest.raises(BatchTooLargeError):
        batch_lines(raw_batch(bytes(1024 * 1024)), budget)
    # Then zlib was asked for no more than one byte past what was left
    assert budget.bytes_left == -1


def test_an_aggregate_inside_an_aggregate_is_one_message_never_unpacked() -> None:
    inner = encode_aggregated("k", [b"m"] * 200)  # 200 messages, were it unpacked
    assert read_messages(encode_aggregated("k", [inner]), RecordBounds(max_messages=100)) == [inner]


def test_batches_larger_than_one_inflate_slice_still_round_trip() -> None:
    lines = [b'{"n":%d,"name":"racer"}' % i for i in range(100_000)]  # ~2.6 MB: several slices
    assert read_messages(encode_aggregated("k", [encode_batch(lines)])) == lines


def test_damaged_and_truncated_batches_are_still_told_apart_from_bombs() -> None:
    batch = raw_batch(b"x" * 1_000_000)
    with pytest.raises(CorruptBatchError, match="truncated"):
        read_messages(batch[:-10])
    with pytest.raises(CorruptBatchError, match="after the end"):
        read_messages(batch + b"!")


# -- the real bounds -----------------------------------------------------------------------------------


def test_the_issues_1_mib_bomb_stops_at_the_bound_and_allocates_little() -> None:
    # Given the hostile record of the issue, at full size
    record = issue_bomb()
    # When it is read against the default bounds
    tracemalloc.start()
    try:
        with pytest.raises(RecordTooLargeError, match=f"past {MAX_RECORD_MESSAGES} messages"):
            read_messages(record)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Then it stopped at the message bound: 131,072 one-byte lines, not 534,773,760 (4.1 GB);
    # the peak is the record itself (a copy or two) plus one inflate slice, not the messages.
    assert peak < 8 * 1024 * 1024, peak


def test_a_1_mib_bomb_of_bytes_without_lines_stops_at_the_byte_bound() -> None:
    # Given 255 batches of 4 MiB of zeros (no newlines: few messages, all bytes)
    batch = raw_batch(bytes(4 * 1024 * 1024))
    record = encode_aggregated("k", [batch] * 255)
    tracemalloc.start()
    try:
        with pytest.raises(RecordTooLargeError, match=f"past {MAX_RECORD_INFLATED_BYTES} bytes"):
            read_messages(record)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Then at most the 16 MiB bound was inflated (plus one slice, and one join of the batch's
    # slices), not 1 GiB
    assert peak < 2 * MAX_RECORD_INFLATED_BYTES, peak


@cache
def simulator_messages(count: int) -> list[bytes]:
    specs = plan_races([1], 10_000, duration=count // 10_000 + 1, seed=5, start_epoch_ms=1_700_000_000_000)
    return [orjson.dumps(m) for spec in specs for m in all_race_messages(spec)][:count]


def test_no_honest_record_comes_near_the_bounds() -> None:
    # Given the densest record Alleycat's producer writes: compressed, 1 MiB of lines
    aggregator = PartitionAggregator(MAX_RECORD_BYTES - 16, compress=True)
    messages = simulator_messages(20_000)
    finished = [r for m in messages for r in aggregator.add("5400802", m)[0]]
    finished += aggregator.drain()
    assert all(len(read_messages(r.data)) < MAX_RECORD_MESSAGES / 10 for r in finished)
    assert [m for r in finished for m in read_messages(r.data)] == messages
    # And the densest any producer could write: one batch of simulator messages filling 1 MiB
    dense = simulator_messages(77_000)
    record = encode_aggregated("5400802", [encode_batch(dense)])
    assert len(record) <= MAX_RECORD_BYTES
    assert read_messages(record) == dense
