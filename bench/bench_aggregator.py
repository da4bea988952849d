"""Aggregator figures: core throughput against a raw decode loop, and DynamoDB writes per race.

    .venv/bin/python bench/bench_aggregator.py [--racers 1000] [--repetitions 5] [--window 5]

1. ``aggregator_records_per_s`` vs ``raw_decode_records_per_s``: the aggregator's core (decode,
   validate, accumulate a window, encode the window state, replay it at the window's end) on
   identical Kinesis batches, against a raw loop of base64 + orjson decode into a dict, alternating
   in the same process; medians of the rates and of the per-repetition ratios. Rates are per second
   of this thread's CPU time, which other processes on a shared machine disturb far less than
   wall-clock time.
2. ``ddb_writes_per_race``: item writes for one race of ``--racers`` racers x 300 s pushed through
   the aggregator with tumbling windows of ``--window`` seconds into DynamoDB (moto, in process),
   against the baseline of one write per message.
3. ``aggregator_peak_mib_10k``: peak memory (tracemalloc) of the aggregator core folding one
   5-second window of 10,000 racers (five invocations of 10,000 records and the final one).
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

for _key, _value in {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
    "POWERTOOLS_METRICS_NAMESPACE": "Bench",
}.items():
    os.environ.setdefault(_key, _value)

import boto3  # noqa: E402
from moto import mock_aws  # noqa: E402

from consumers.aggregator.core import WindowAggregator  # noqa: E402
from leaderboard.adapters.dynamodb import DynamoRaceStore  # noqa: E402
from leaderboard.domain import MergeOutcome  # noqa: E402
from simulator import generate_race_messages, plan_races  # noqa: E402
from tests.support.events import kinesis_record, window_event  # noqa: E402
from tests.support.tables import create_races_table  # noqa: E402

# 1,000 racers at 1 Hz fill a batch of 1,000 every second: five batches per 5-second window.
WINDOW_BATCHES = 5


class NullStore:
    """A store that accepts merges without I/O, so only the aggregator's own work is timed."""

    def merge(self, delta: Any) -> Any:
        return MergeOutcome(race=None, items_written=0)  # type: ignore[arg-type]

    def record_progress(self, progress: Any) -> None:
        """The shard's progress (used by the race closer) is not the aggregator's work: dropped."""


def batches_of(racers: int, seconds: int, batch_size: int = 1000) -> list[list[dict[str, Any]]]:
    spec = plan_races([1], racers, duration=seconds, seed=1, race_id_base=5_400_000)[0]
    payloads = [orjson.dumps(m) for second in generate_race_messages(spec) for m in second]
    records = [kinesis_record(p, i, partition_key="5400000") for i, p in enumerate(payloads)]
    return [records[i : i + batch_size] for i in range(0, len(records), batch_size)]


def raw_loop(batches: list[list[dict[str, Any]]]) -> int:
    count = 0
    for batch in batches:
        for record in batch:
            orjson.loads(base64.b64decode(record["kinesis"]["data"]))
            count += 1
    return count


def aggregator_loop(batches: list[list[dict[str, Any]]]) -> int:
    aggregator = WindowAggregator(NullStore(), lambda poison: None, 1_000_000_000)  # type: ignore[arg-type]
    state: dict[str, Any] = {}
    count = 0
    for index, batch in enumerate(batches, start=1):
        response, summary = aggregator.handle(window_event(batch, state))
        state = response["state"]
        count += summary.messages
        if index % WINDOW_BATCHES == 0:  # the window ends: its final invocation merges
            aggregator.handle(window_event([], state, final=True))
            state = {}
    return count


def throughput(repetitions: int) -> dict[str, float]:
    """Aggregator core vs raw decode on the same 20,000 records (one race, batches of 1,000)."""
    batches = batches_of(1000, 20)
    aggregator_loop(batches)  # warm up: imports, pydantic's first validation
    raw: list[float] = []
    agg: list[float] = []
    clock = time.thread_time
    for rep in range(repetitions):
        order = [("raw", raw_loop), ("agg", aggregator_loop)]
        if rep % 2:
            order.reverse()
        for name, fn in order:
            start = clock()
            n = fn(batches)
            rate = n / (clock() - start)
            (raw if name == "raw" else agg).append(rate)
    ratios = [a / r for a, r in zip(agg, raw, strict=True)]
    return {
        "raw_decode_records_per_s": statistics.median(raw),
        "aggregator_records_per_s": statistics.median(agg),
        "aggregator_vs_raw_ratio": statistics.median(ratios),
    }


class CountingClient:
    """Counts item writes (PutItem / UpdateItem / BatchWriteItem items) through a boto3 client."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.writes = 0

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)
        if name in ("put_item", "update_item", "delete_item"):

            def counted(**kwargs: Any) -> Any:
                self.writes += 1
                return method(**kwargs)

            return counted
        return method


def writes_per_race(racers: int, window: int) -> dict[str, float]:
    spec = plan_races([1], racers, duration=300, seed=2, race_id_base=7_700_000)[0]
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        table = create_races_table(ddb)
        counting = CountingClient(ddb)
        aggregator = WindowAggregator(DynamoRaceStore(counting, table), lambda p: None, 768 * 1024)
        state: dict[str, Any] = {}
        messages = 0
        for second, batch in enumerate(generate_race_messages(spec), start=1):
            records = [kinesis_record(orjson.dumps(m), messages + i) for i, m in enumerate(batch)]
            messages += len(batch)
            state = aggregator.handle(window_event(records, state))[0]["state"]
            if second % window == 0 or second == spec.duration:
                aggregator.handle(window_event([], state, final=True))
                state = {}
    return {
        "ddb_writes_per_race": counting.writes,
        "ddb_writes_per_race_baseline": messages,
        "ddb_writes_reduction": messages / counting.writes,
    }


def peak_memory_10k() -> dict[str, float]:
    """Peak traced memory of the aggregator core over one 5-second window of 10,000 racers."""
    batches = batches_of(10_000, 5, batch_size=10_000)
    aggregator = WindowAggregator(NullStore(), lambda poison: None, 768 * 1024)  # type: ignore[arg-type]
    sizes: list[int] = []
    tracemalloc.start()
    state: dict[str, Any] = {}
    for batch in batches:
        response, _ = aggregator.handle(window_event(batch, state))
        state = response["state"]
        sizes.append(len(orjson.dumps(state)))
    aggregator.handle(window_event([], state, final=True))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"aggregator_peak_mib_10k": peak / 2**20, "window_state_bytes_10k_5s": max(sizes)}


def run(repetitions: int = 7, racers: int = 1000, window: int = 5) -> dict[str, float]:
    """Every aggregator figure."""
    figures: dict[str, float] = {}
    figures.update(throughput(repetitions))
    figures.update(writes_per_race(racers, window))
    figures.update(peak_memory_10k())
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--racers", type=int, default=1000)
    parser.add_argument("--window", type=int, default=5)
    parser.add_argument("--repetitions", type=int, default=7)
    args = parser.parse_args()
    figures = run(args.repetitions, args.racers, args.window)
    width = max(map(len, figures))
    for name, value in figures.items():
        print(f"{name:<{width}}  {value:>14,.2f}")


if __name__ == "__main__":
    main()
