"""A hostile record on the stream: a ~1 MiB decompression bomb, then an honest race on the same shard.

The bomb is the issue's: a KPL aggregate of 255 compressed batches, each inflating to 2**21 lines
(534,773,760 messages, 4.1 GB decoded). Unbounded, it killed the aggregator, and the retries and
bisection stalled the shard until the record aged out. Now it is parked whole, once, with its
reason, and the race behind it is read to exact standings. Timings and memory are measured by
``bench/bench_hostile.py``; this test only waits, within generous bounds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from localcloud.faults import FaultInjector

from alleycat.stack import LocalStack
from streamformat import MAX_RECORD_BYTES, MAX_RECORD_MESSAGES, encode_aggregated, encode_batch
from tests.faults.support import (
    assert_standings_match,
    drain,
    mapping_errors,
    messages_of,
    plan,
    put_raw,
    receive_all,
    running_stack,
    send,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.xdist_group("faults-hostile")]


def decompression_bomb(partition_key: str) -> bytes:
    """The issue's hostile record: as many compressed batches of 2**21 one-byte lines as fit in
    one record with this partition key (255 with the issue's), ~1 MiB."""
    batch = encode_batch([b"x"] * 2**21)
    for count in range(255, 200, -1):
        try:
            record = encode_aggregated(partition_key, [batch] * count)
        except ValueError:
            continue  # a longer partition key leaves room for fewer
        assert 1_000_000 < len(record) + len(partition_key) <= MAX_RECORD_BYTES
        return record
    raise AssertionError("no bomb fits")


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalStack, FaultInjector]]:
    with running_stack(Path(tmp_path_factory.mktemp("faults-hostile")), seed=13) as running:
        yield running


def test_a_decompression_bomb_is_parked_once_and_the_race_behind_it_is_exact(
    cloud: tuple[LocalStack, FaultInjector],
) -> None:
    """Given a ~1 MiB record expanding to 534,773,760 messages put on a race's shard, and that
    race's honest messages right after it, the bomb reaches the failure queue exactly once with its
    reason, digest and size, no invocation fails, and the race's standings are exact."""
    stack, _ = cloud
    assert stack.cloud is not None
    receive_all(stack, expected=0, timeout=0.5)  # start from an empty failure queue
    errors_before = mapping_errors(stack)
    specs = plan(100, 12, seed=131)
    messages = messages_of(specs)
    race_id = specs[0].race_id
    bomb = decompression_bomb(str(race_id))

    # The bomb goes first, on the race's partition key, so the race's records queue behind it.
    put_raw(stack, [(bomb, str(race_id))])
    send(stack, messages, aggregate=True, compress=True)
    drain(stack)
    assert_standings_match(stack, specs, messages)

    parked = receive_all(stack, expected=1)
    assert len(parked) == 1, [p.get("reason") for p in parked]
    (record,) = parked
    assert record["reason"] == (
        f"record expands past {MAX_RECORD_MESSAGES} messages (the bound for one Kinesis record)"
    )
    assert record["partitionKey"] == str(race_id) and record["subSequenceNumber"] is None
    assert record["truncated"] and record["payloadBytes"] == len(bomb)
    assert record["payloadSha256"] == hashlib.sha256(bomb).hexdigest()
    # It was never reported as failed (no retries, no bisection), and the shard is read to its tip.
    assert mapping_errors(stack) == errors_before
    engine = stack.cloud.mapping_engine
    wait_until(
        lambda: all(s.iterator_age_ms == 0 for s in engine.stats() if ":kinesis:" in str(s.event_source_arn)),
        30.0,
        "the race stream's shards read to their tip",
    )
