"""The finish line: the final window of a big race, and how soon a race shows as final.

    .venv/bin/python bench/bench_finish.py [--quick] [--part merge|lag|all] [--cold-10k]

1. The final window's merge (every racer's last second, with ``final``: personal bests, buckets,
   summary) through ``DynamoRaceStore.merge`` against a moto server in a child process, as
   localcloud serves the table; the race's earlier seconds are merged first, untimed.
   ``final_merge_s_10k``: 10,000 racers, steady state (the class holds bests from an earlier race
   and one racer in ten beats theirs). ``final_merge_s_1k`` against ``final_merge_s_1k_per_item``
   (the previous path: one conditional UpdateItem per finished racer, bucket by bucket) in the same
   run, and without ``--quick`` the same for the class's first race (``_cold``: every racer a new
   best). The old path costs a request per racer, minutes at 10,000 on a busy machine, so the
   same-run comparison is made at 1,000. ``final_merge_s_10k_no_pb``: the merge without personal
   bests, i.e. the window's cost were the bests written off its path (a consumer of the table's
   stream). ``--cold-10k`` adds ``final_merge_s_10k_cold`` (about a minute).
2. ``final_lag_s_1k``: 1,000 racers race ``LAG_SECONDS`` s on the local stack (localcloud,
   ``WINDOW_S``-second windows, KPL-aggregated records), the class's bests set first so one racer
   in ten beats theirs; the time from the last racer message handed to the producer until
   ``GET /races/{id}/leaderboard`` answers ``"status": "final"``. Goal: at most window + 5 s.
   Without ``--quick`` also ``final_lag_s_1k_cold`` (the class's first race).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_producer import local_server  # noqa: E402

from alleycat.stack import LocalStack  # noqa: E402
from leaderboard.adapters.dynamodb import CLIENT_CONFIG, DynamoRaceStore  # noqa: E402
from leaderboard.adapters.items import (  # noqa: E402
    PB_SCALE,
    class_pk,
    iso,
    legacy_pb_bound,
    n,
    pb_rank_key,
    pb_sk,
    s,
)
from leaderboard.domain import RaceDelta, RacerDelta, RacerMessage  # noqa: E402
from leaderboard.domain.race import FinalResult  # noqa: E402
from producers import KinesisProducer  # noqa: E402
from simulator import generate_race_messages, plan_races  # noqa: E402
from tests.support.tables import create_races_table  # noqa: E402

RACERS = 10_000
SECONDS = 10  # earlier seconds of the race, merged untimed before the final window
IMPROVING_SHARE = 10  # steady state: one racer in ten beats their best
WINDOW_S = 5
LAG_RACERS = 1000
LAG_SECONDS = 12
LAG_TIMEOUT_S = 180

MOTO_SERVER = """
import sys
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()
server.stop()
"""


class PerItemStore(DynamoRaceStore):
    """The previous personal-best path, kept here as the baseline: one conditional UpdateItem per
    finished racer, offered bucket by bucket (100 at a time on a pool of 8), no read first."""

    def record_results(self, results: Sequence[FinalResult]) -> int:
        """Offer every result with its own UpdateItem."""
        if not results:
            return 0
        with ThreadPoolExecutor(max_workers=8) as pool:
            return sum(pool.map(self._update_best, results))

    def _put_buckets(self, writes: Any) -> set[int]:
        # The old merge wrote bucket after bucket.
        conflicts: set[int] = set()
        for bucket, entry in writes.items():
            conflicts |= DynamoRaceStore._put_buckets(self, {bucket: entry})
        return conflicts

    def _update_best(self, result: FinalResult) -> bool:
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key={"pk": s(class_pk(result.class_id)), "sk": s(pb_sk(result.racer_id))},
                UpdateExpression=(
                    "SET best = :best, #scale = :scale, #name = :name, raceId = :race, "
                    "achievedAt = :at, classId = :class, racerId = :racer, gsi1pk = :gpk, gsi1sk = :gsk"
                ),
                ConditionExpression=(
                    "attribute_not_exists(best) OR (attribute_exists(#scale) AND best < :best) "
                    "OR (attribute_not_exists(#scale) AND best < :legacy)"
                ),
                ExpressionAttributeNames={"#name": "name", "#scale": "scale"},
                ExpressionAttributeValues={
                    ":best": n(result.total),
                    ":scale": n(PB_SCALE),
                    ":legacy": n(legacy_pb_bound(result.total)),
                    ":name": s(result.name),
                    ":race": n(result.race_id),
                    ":at": s(iso(result.achieved_at)),
                    ":class": n(result.class_id),
                    ":racer": n(result.racer_id),
                    ":gpk": s(class_pk(result.class_id)),
                    ":gsk": s(pb_rank_key(result.total, result.racer_id)),
                },
            )
        except self._ddb.exceptions.ConditionalCheckFailedException:
            return False
        return True


class NoBestsStore(DynamoRaceStore):
    """The merge alone: what the final window costs when someone else writes the bests."""

    def record_results(self, results: Sequence[FinalResult]) -> int:
        """Write nothing."""
        return 0


def moto_server() -> AbstractContextManager[str]:
    """A moto server in a child process (as localcloud's endpoint is), its URL."""
    return local_server(MOTO_SERVER)


def _client(endpoint: str) -> Any:
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=CLIENT_CONFIG,
    )


def _output(racer_id: int, second: int, boost: int = 0) -> int:
    return 900_000 + (racer_id * 7919 + second * 104_729) % 500_000 + boost


def race_deltas(
    race_id: int, class_id: int, racers: int, boost: Callable[[int], int]
) -> tuple[RaceDelta, RaceDelta]:
    """The race before its last second, and its final window (every racer's last second, final)."""
    now_ms = int(time.time() * 1000)
    before = RaceDelta(race_id=race_id, class_id=class_id, messages=racers * SECONDS)
    before.first_device_ts, before.last_device_ts = now_ms - (SECONDS + 1) * 1000, now_ms - 1000
    final = RaceDelta(race_id=race_id, class_id=class_id, messages=racers)
    final.first_device_ts = final.last_device_ts = now_ms
    last = SECONDS + 1
    for racer_id in range(1, racers + 1):
        outputs = {sec: _output(racer_id, sec) for sec in range(1, SECONDS + 1)}
        before.racers[racer_id] = RacerDelta(f"Racer {racer_id}", outputs, None, SECONDS)
        final.racers[racer_id] = RacerDelta(
            f"Racer {racer_id}", {last: _output(racer_id, last, boost(racer_id))}, last, last
        )
    return before, final


def timed_final_merge(
    store: DynamoRaceStore, race_id: int, class_id: int, racers: int, boost: Callable[[int], int]
) -> float:
    """Seconds the final window's merge took (the race's earlier seconds merged first, untimed)."""
    before, final = race_deltas(race_id, class_id, racers, boost)
    store.merge(before)
    began = time.perf_counter()
    outcome = store.merge(final)
    elapsed = time.perf_counter() - began
    if outcome.race.status != "final":
        raise RuntimeError(f"race {race_id} did not finish: {outcome.race}")
    return elapsed


def final_merge(
    quick: bool = False, cold_10k: bool = False, log: Callable[[str], None] = print
) -> dict[str, float]:
    """The final window's merge: the new path at 10,000 racers; new against old at 1,000.

    The old path costs one request per finished racer (~20-80 ms each on moto on a busy machine):
    at 10,000 racers that is minutes per case, so the same-run comparison is made at 1,000 racers
    and the 10,000-racer figures of the old path are not measured.
    """
    figures: dict[str, float] = {}
    steady = lambda r: 600_000 if r % IMPROVING_SHARE == 0 else -600_000  # noqa: E731
    cold = lambda _r: 0  # noqa: E731
    with moto_server() as endpoint:
        client = _client(endpoint)
        table = create_races_table(client)
        new, old = DynamoRaceStore(client, table), PerItemStore(client, table)
        counter = iter(range(1_000_001, 2_000_000))

        def measure(name: str, store: DynamoRaceStore, racers: int, boost: Callable[[int], int]) -> None:
            class_id = next(counter)
            if boost is steady:
                # The class already holds the bests of an earlier race (untimed).
                timed_final_merge(new, next(counter), class_id, racers, cold)
            figures[name] = timed_final_merge(store, next(counter), class_id, racers, boost)
            log(f"{name}: {figures[name]:.2f} s")

        measure("final_merge_s_1k", new, 1000, steady)
        measure("final_merge_s_1k_per_item", old, 1000, steady)
        if not quick:
            measure("final_merge_s_1k_cold", new, 1000, cold)
            measure("final_merge_s_1k_cold_per_item", old, 1000, cold)
        measure("final_merge_s_10k", new, RACERS, steady)
        measure("final_merge_s_10k_no_pb", NoBestsStore(client, table), RACERS, cold)
        if cold_10k:  # about a minute on a busy machine: only when asked for
            measure("final_merge_s_10k_cold", new, RACERS, cold)
    figures["final_merge_speedup_1k"] = figures["final_merge_s_1k_per_item"] / figures["final_merge_s_1k"]
    return figures


@contextmanager
def local_stack() -> Iterator[LocalStack]:
    """The whole stack on 127.0.0.1 (one shard, ``WINDOW_S``-second windows), state in a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="alleycat-bench-finish-") as home:
        stack = LocalStack(
            home=Path(home),
            persist=False,
            parameters={"ShardCount": "1", "WindowSeconds": str(WINDOW_S)},
            # As bench_live: close a race's last window soon after its last message.
            window_idle_wait_s=1.0,
        )
        stack.start()
        try:
            yield stack
        finally:
            stack.stop()


def _race_status(api_url: str, race_id: int) -> str | None:
    try:
        with urllib.request.urlopen(f"{api_url}/races/{race_id}/leaderboard?limit=1", timeout=10) as response:
            return str(orjson.loads(response.read())["status"])
    except OSError:
        return None  # 404 until the race's first window lands, or a busy moment: ask again


def race_to_final(
    stack: LocalStack, class_id: int, racers: int, seconds: int, seed: int, improving_share: int | None
) -> float:
    """Race ``racers`` at 1 Hz; seconds from the last message handed over to the API saying final.

    ``improving_share``: the class's bests are first set (untimed) so that one racer in that many
    beats theirs; None leaves the class without bests (its first race).
    """
    assert stack.cloud is not None
    outputs = stack.stacks["alleycat"].outputs
    (spec,) = plan_races(
        [class_id], racers, duration=seconds, seed=seed, race_id_base=_race_base() + class_id
    )
    by_second = list(generate_race_messages(spec))
    if improving_share is not None:
        totals: dict[int, int] = {}
        for messages in by_second:
            for m in messages:
                msg = RacerMessage.model_validate(m)
                totals[msg.racer_id] = totals.get(msg.racer_id, 0) + msg.output_e4
        store = DynamoRaceStore(stack.cloud.client("dynamodb"), outputs["TableName"])
        store.record_results(
            [
                FinalResult(
                    class_id, r, f"Racer {r}", 1, t - 1 if r % improving_share == 0 else t + 1, _now()
                )
                for r, t in totals.items()
            ]
        )
    with KinesisProducer(
        stream_name=outputs["StreamName"],
        client=stack.cloud.client("kinesis"),
        aggregate=True,
        compress=True,
        linger_seconds=0.05,
    ) as producer:
        start = time.time() + 0.2
        for index, messages in enumerate(by_second):
            time.sleep(max(0.0, start + index - time.time()))
            for message in messages:
                message["deviceTimestamp"] = int(time.time() * 1000)
                producer.put(orjson.dumps(message), message["raceId"])
        last_sent = time.monotonic()
    deadline = last_sent + LAG_TIMEOUT_S
    while time.monotonic() < deadline:
        if _race_status(outputs["ApiUrl"], spec.race_id) == "final":
            return time.monotonic() - last_sent
        time.sleep(0.2)
    raise TimeoutError(f"race {spec.race_id} not final {LAG_TIMEOUT_S} s after its last message")


def _race_base() -> int:
    return 4_000_000_000 + int(time.time() * 10) % 100_000_000 * 10


def _now() -> datetime:
    return datetime.now(UTC)


def final_lag(quick: bool = False, log: Callable[[str], None] = print) -> dict[str, float]:
    """Last racer message -> race final on the API, 1,000 racers, through the local stack."""
    figures: dict[str, float] = {"window_s": WINDOW_S}
    with local_stack() as stack:
        # A small race first, so no function's cold start is measured.
        race_to_final(stack, 1, 20, 3, seed=1, improving_share=None)
        figures["final_lag_s_1k"] = race_to_final(
            stack, 2, LAG_RACERS, LAG_SECONDS, seed=2, improving_share=IMPROVING_SHARE
        )
        log(f"final lag, 1,000 racers, 1 in {IMPROVING_SHARE} a new best: {figures['final_lag_s_1k']:.2f} s")
        if not quick:
            figures["final_lag_s_1k_cold"] = race_to_final(
                stack, 3, LAG_RACERS, LAG_SECONDS, seed=3, improving_share=None
            )
            log(f"final lag, 1,000 racers, the class's first race: {figures['final_lag_s_1k_cold']:.2f} s")
    return figures


def run(quick: bool = False) -> dict[str, float]:
    """Every figure of this benchmark (``quick``: fewer comparisons)."""
    figures = final_merge(quick=quick)
    figures.update(final_lag(quick=quick))
    return figures


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer comparisons")
    parser.add_argument("--part", choices=("merge", "lag", "all"), default="all")
    parser.add_argument(
        "--cold-10k", action="store_true", help="also the class's first race at 10,000 racers"
    )
    args = parser.parse_args()
    figures: dict[str, float] = {}
    if args.part in ("merge", "all"):
        figures.update(final_merge(args.quick, args.cold_10k))
    if args.part in ("lag", "all"):
        figures.update(final_lag(args.quick))
    for name, value in figures.items():
        print(f"{name:36} {value:10.2f}")


if __name__ == "__main__":
    main()
