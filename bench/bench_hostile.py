"""A hostile record on the stream: what it costs the aggregator now that records are bounded.

    .venv/bin/python bench/bench_hostile.py [--racers 100] [--seconds 12]

The record is the issue's decompression bomb: a ~1 MiB KPL aggregate of compressed batches, each
inflating to 2**21 one-byte lines (534,773,760 messages, 4.1 GB RSS and 28 s per attempt before the
bounds, which killed the 1,024 MB function and stalled the shard for MaximumRecordAgeInSeconds).

1. In process: :func:`streamformat.read_messages` on the bomb, and the aggregator's core
   (``WindowAggregator.handle``, no I/O) on a batch holding it — wall time and tracemalloc peak.
2. On the local stack (``tests.faults.support.running_stack``: template.yaml, 2-second windows,
   localcloud's shard limits on), after a warm-up race:

   - ``hostile_parked_s`` / ``aggregator_peak_rss_mib``: the bomb alone, put on a race's shard;
     seconds from its PutRecords to its entry in the failure queue, and the aggregator worker's peak
     RSS meanwhile (Linux ``VmHWM``, reset through ``/proc/<pid>/clear_refs`` just before, so it
     covers this record only), beside its RSS before (``aggregator_rss_before_mib``).
   - ``hostile_to_final_s``: the bomb, then at once an honest race on the same shard (partition key
     = its raceId); seconds from the bomb's PutRecords to the API serving the race's final standings
     equal to the oracle's. ``honest_to_final_s`` is the same race without the bomb, for scale.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from alleycat.stack import LocalStack  # noqa: E402
from consumers.aggregator.core import WindowAggregator  # noqa: E402
from leaderboard.domain import MergeOutcome  # noqa: E402
from streamformat import MAX_RECORD_BYTES, encode_aggregated, encode_batch, read_messages  # noqa: E402
from tests.faults.support import (  # noqa: E402
    AGGREGATOR,
    function_name,
    get_json,
    leaderboard,
    messages_of,
    outputs,
    plan,
    put_raw,
    receive_all,
    running_stack,
    send,
)
from tests.support.events import kinesis_record  # noqa: E402
from tests.support.oracle import expected_standings  # noqa: E402

WAIT_S = 180.0


def decompression_bomb(partition_key: str) -> bytes:
    """As many batches of 2**21 one-byte lines as fit in one record (255 with a 7-digit key)."""
    batch = encode_batch([b"x"] * 2**21)
    for count in range(255, 200, -1):
        try:
            return encode_aggregated(partition_key, [batch] * count)
        except ValueError:
            continue
    raise RuntimeError("no bomb fits")


class NullStore:
    """Accepts merges without I/O, so only the aggregator's own work is measured."""

    def merge(self, delta: Any) -> Any:
        return MergeOutcome(race=None, items_written=0)  # type: ignore[arg-type]


def measured(work: Callable[[], object]) -> tuple[float, int]:
    """(wall seconds, tracemalloc peak bytes) of ``work()``; its exceptions are part of the work."""
    tracemalloc.start()
    start = time.perf_counter()
    with contextlib.suppress(ValueError):
        work()
    elapsed = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return elapsed, peak


def in_process(log: Callable[[str], None]) -> dict[str, float]:
    bomb = decompression_bomb("5400802")
    decode_s, decode_peak = measured(lambda: read_messages(bomb))
    parked: list[Any] = []
    aggregator = WindowAggregator(NullStore(), parked.extend, 1_000_000_000)  # type: ignore[arg-type]
    event = {"Records": [kinesis_record(bomb, 0, partition_key="5400802")]}
    core_s, core_peak = measured(lambda: aggregator.handle(event))
    assert len(parked) == 1, parked
    log(f"bomb: {len(bomb):,} bytes (limit {MAX_RECORD_BYTES:,}); parked reason: {parked[0].reason}")
    return {
        "bomb_bytes": len(bomb),
        "decode_s": decode_s,
        "decode_peak_mib": decode_peak / 2**20,
        "core_s": core_s,
        "core_peak_mib": core_peak / 2**20,
    }


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def aggregator_pids(stack: LocalStack) -> list[int]:
    assert stack.cloud is not None
    pool = stack.cloud.runtime.pool(function_name(stack, AGGREGATOR))
    return pool.worker_pids() if pool is not None else []


def wait_final(stack: LocalStack, race_id: int, expected: list[dict[str, int]], timeout: float) -> None:
    """Poll the API until the race is final with exactly the expected standings."""
    api = outputs(stack)["ApiUrl"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = get_json(f"{api}/races/{race_id}/leaderboard?limit=1000")
        if status == 200 and body.get("status") == "final":
            got = leaderboard(stack, race_id)["standings"]
            keys = ("rank", "racerId", "totalOutput")
            if [{k: s[k] for k in keys} for s in got] == expected:
                return
        time.sleep(0.1)
    raise TimeoutError(f"race {race_id} not final with exact standings after {timeout} s")


def wait_parked(stack: LocalStack, digest: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for body in receive_all(stack, expected=1, timeout=0.2):
            if body.get("payloadSha256") == digest:
                return body
    raise TimeoutError("the hostile record was not parked")


def race(racers: int, seconds: int, seed: int) -> tuple[int, list[dict[str, Any]], list[dict[str, int]]]:
    specs = plan(racers, seconds, seed=seed)
    messages = messages_of(specs)
    return specs[0].race_id, messages, expected_standings(messages)[specs[0].race_id]


def live(racers: int, seconds: int, log: Callable[[str], None]) -> dict[str, float]:
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as home, running_stack(Path(home), seed=17) as (stack, _):
        # Warm-up: the aggregator's worker exists and has handled a race.
        race_id, messages, expected = race(racers, seconds, seed=1)
        send(stack, messages, aggregate=True, compress=True)
        wait_final(stack, race_id, expected, WAIT_S)
        receive_all(stack, expected=0, timeout=0.5)

        # The bomb alone: time to parked, and the worker's peak RSS meanwhile.
        pids = aggregator_pids(stack)
        before = {pid: _status_kib(pid, "VmRSS") for pid in pids}
        for pid in pids:
            Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        key = str(race_id + 1)
        bomb = decompression_bomb(key)
        start = time.monotonic()
        put_raw(stack, [(bomb, key)])
        parked = wait_parked(stack, hashlib.sha256(bomb).hexdigest(), WAIT_S)
        figures["hostile_parked_s"] = time.monotonic() - start
        peaks = {pid: _status_kib(pid, "VmHWM") for pid in aggregator_pids(stack) if pid in before}
        figures["aggregator_rss_before_mib"] = max(before.values()) / 1024
        figures["aggregator_peak_rss_mib"] = max(peaks.values()) / 1024
        log(f"parked: {parked['reason']} ({parked['payloadBytes']:,} bytes, truncated={parked['truncated']})")

        # The bomb, then an honest race on the same shard: time to the race's exact final standings.
        race_id, messages, expected = race(racers, seconds, seed=2)
        bomb = decompression_bomb(str(race_id))
        start = time.monotonic()
        put_raw(stack, [(bomb, str(race_id))])
        send(stack, messages, aggregate=True, compress=True)
        wait_final(stack, race_id, expected, WAIT_S)
        figures["hostile_to_final_s"] = time.monotonic() - start
        wait_parked(stack, hashlib.sha256(bomb).hexdigest(), WAIT_S)

        # The same race without the bomb, for scale.
        race_id, messages, expected = race(racers, seconds, seed=3)
        start = time.monotonic()
        send(stack, messages, aggregate=True, compress=True)
        wait_final(stack, race_id, expected, WAIT_S)
        figures["honest_to_final_s"] = time.monotonic() - start
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--racers", type=int, default=100)
    parser.add_argument("--seconds", type=int, default=12)
    args = parser.parse_args()
    figures = in_process(print)
    figures.update(live(args.racers, args.seconds, print))
    for name, value in figures.items():
        print(f"{name:28} {value:,.3f}")


if __name__ == "__main__":
    main()
