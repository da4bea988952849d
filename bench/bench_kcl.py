"""The KCL consumer against the Lambda path: records/s on one shard, and the lag to final standings.

    .venv/bin/python bench/bench_kcl.py [--quick]

Both paths run in the same run, on the same workload, each on a fresh local stack (one shard,
2 s windows, a race's last window closed 0.5 s after its last record):

- ``*_records_per_s``: a stream pre-loaded with the workload (JSON messages, one per record) while
  its consumer is off, then consumed: records / time from the consumer's start of reading to its
  checkpoint at the last record (taken after that window's merge has landed). The Lambda path
  starts when its event source mapping is enabled; the KCL path when its record processor was
  handed its first records (the KCL's lease table bootstrap, up to a minute, is not reading).
- ``*_final_lag_s``: with the consumer caught up, a short race is sent; the time from the last
  racer message accepted by Kinesis to the API answering the race's standings as final and exact
  (the median of 3 races one after the other, 1 with ``--quick``; fewer if the run's time is up).

One KCL worker with the test timings of ``tests/faults/support.py``. The run stops by itself
(each wait has a deadline; about 2-3 minutes on a quiet machine).
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alleycat.stack import LocalStack
from consumers.kcl.daemon import KclWorkers, WorkerConfig
from simulator import all_race_messages, plan_races
from tests.support.oracle import expected_standings

WINDOW_S = 2
IDLE_WAIT_S = 0.5
KCL_PROPERTIES = {
    "failoverTimeMillis": "6000",
    "leaseAssignmentIntervalMillis": "1000",
    "idleTimeBetweenReadsInMillis": "200",
}
# Every wait of the run is bounded; together they stay under 4 minutes.
DRAIN_TIMEOUT_S = 60.0
KCL_START_TIMEOUT_S = 100.0
FINAL_TIMEOUT_S = 30.0
# Lag samples stop being taken this long into the run, so the whole run stays under 4 minutes.
LAG_BUDGET_S = 180.0


@contextmanager
def local_stack(home: Path) -> Iterator[LocalStack]:
    """The stack on 127.0.0.1 with one shard, its aggregator mapping disabled (the stream fills
    first; the measured consumer starts afterwards)."""
    stack = LocalStack(
        home=home,
        persist=False,
        parameters={"ShardCount": "1", "WindowSeconds": str(WINDOW_S)},
        window_idle_wait_s=IDLE_WAIT_S,
    )
    stack.start()
    try:
        _set_mapping(stack, enabled=False)
        yield stack
    finally:
        stack.stop()


def _outputs(stack: LocalStack) -> dict[str, str]:
    return stack.stacks["alleycat"].outputs


def _set_mapping(stack: LocalStack, *, enabled: bool) -> None:
    """Enable or disable the stream's mapping through Lambda's API, then let the engine act on it now."""
    assert stack.cloud is not None
    lambda_client = stack.cloud.client("lambda")
    for mapping in lambda_client.list_event_source_mappings()["EventSourceMappings"]:
        if mapping.get("EventSourceArn") == _outputs(stack)["StreamArn"]:
            lambda_client.update_event_source_mapping(UUID=mapping["UUID"], Enabled=enabled)
    stack.cloud.mapping_engine.sync()


def workload(racers: int, seconds: int, seed: int) -> list[dict[str, Any]]:
    """One race's messages, ``racers`` x ``seconds``, in sending order."""
    specs = plan_races([1], racers, duration=seconds, seed=seed, start_epoch_ms=int(time.time() * 1000))
    return [m for spec in specs for m in all_race_messages(spec)]


def put_all(stack: LocalStack, messages: Sequence[dict[str, Any]]) -> int:
    """PutRecords (partition key raceId), re-sending what the shard's write limit refused; returns
    the last sequence number written."""
    assert stack.cloud is not None
    kinesis = stack.cloud.client("kinesis")
    stream = _outputs(stack)["StreamName"]
    last = 0
    for start in range(0, len(messages), 500):
        pending = [
            {"Data": orjson.dumps(m), "PartitionKey": str(m["raceId"])} for m in messages[start : start + 500]
        ]
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while pending:
            answer = kinesis.put_records(StreamName=stream, Records=pending)
            last = max(
                [last, *(int(r["SequenceNumber"]) for r in answer["Records"] if "SequenceNumber" in r)]
            )
            pending = [entry for entry, r in zip(pending, answer["Records"], strict=True) if "ErrorCode" in r]
            if pending:
                if time.monotonic() > deadline:
                    raise TimeoutError("the stream kept refusing records")
                time.sleep(0.1)  # the shard's budget refills continuously
    return last


def wait_for(condition: Callable[[], Any], timeout: float, what: str, every_s: float = 0.05) -> Any:
    """Poll until ``condition()`` is truthy and return it; raise after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(every_s)


def _final_and_exact(api: str, race_id: int, expected: list[dict[str, Any]]) -> bool:
    query = urllib.parse.urlencode({"limit": "1000"})
    try:
        with urllib.request.urlopen(f"{api}/races/{race_id}/leaderboard?{query}", timeout=10) as response:
            body = orjson.loads(response.read())
    except OSError:
        return False  # 404 until the race's first window lands
    got = [
        {"rank": s["rank"], "racerId": s["racerId"], "totalOutput": s["totalOutput"]}
        for s in body["standings"]
    ]
    return bool(body["status"] == "final" and got == expected)


def median_final_lag(stack: LocalStack, seed: int, samples: int, budget_until: float) -> float:
    """The median of up to ``samples`` final lags, one race after the other (at least one)."""
    lags = [final_lag(stack, seed)]
    while len(lags) < samples and time.monotonic() < budget_until:
        lags.append(final_lag(stack, seed + len(lags) * 1000))
    return statistics.median(lags)


def final_lag(stack: LocalStack, seed: int) -> float:
    """Seconds from the last message of a short race accepted by Kinesis to its final standings."""
    messages = workload(20, 10, seed)
    race_id = messages[0]["raceId"]
    expected = expected_standings(messages)[race_id]
    put_all(stack, messages)
    sent = time.monotonic()
    wait_for(
        lambda: _final_and_exact(_outputs(stack)["ApiUrl"], race_id, expected), FINAL_TIMEOUT_S, "final", 0.02
    )
    return time.monotonic() - sent


def lambda_path(
    home: Path, messages: Sequence[dict[str, Any]], lags: int, budget_until: float, log: Callable[[str], None]
) -> dict[str, float]:
    """The aggregator's event source mapping draining the pre-loaded shard, then the lag."""
    with local_stack(home) as stack:
        assert stack.cloud is not None
        last = put_all(stack, messages)
        log(f"lambda: {len(messages):,} records loaded; enabling the mapping ...")
        started = time.monotonic()
        _set_mapping(stack, enabled=True)
        arn = _outputs(stack)["StreamArn"]

        def drained() -> bool:
            assert stack.cloud is not None
            stats = [s for s in stack.cloud.mapping_engine.stats() if s.event_source_arn == arn]
            return any(s.checkpoint is not None and int(s.checkpoint) >= last for s in stats)

        wait_for(drained, DRAIN_TIMEOUT_S, "the mapping's checkpoint at the last record")
        rate = len(messages) / (time.monotonic() - started)
        log("lambda: short races to their final standings ...")
        lag = median_final_lag(stack, 72, lags, budget_until)
        return {"lambda_records_per_s": rate, "lambda_final_lag_s": lag}


def _first_records_at(workers: KclWorkers) -> float | None:
    pattern = re.compile(r"shard shardId-\d+: first records at (\d+\.\d+)")
    times = [
        float(at)
        for worker in workers.workers
        if worker.log_path.exists()
        for at in pattern.findall(worker.log_path.read_text(errors="replace"))
    ]
    return min(times) if times else None


def _kcl_checkpoint(stack: LocalStack, table: str) -> int:
    assert stack.cloud is not None
    ddb = stack.cloud.client("dynamodb")
    try:
        items = ddb.scan(TableName=table, ConsistentRead=True).get("Items", [])
    except ddb.exceptions.ResourceNotFoundException:
        return 0
    checkpoints = [item.get("checkpoint", {}).get("S", "") for item in items]
    return max((int(c) for c in checkpoints if c.isdigit()), default=0)


def kcl_path(
    home: Path, messages: Sequence[dict[str, Any]], lags: int, budget_until: float, log: Callable[[str], None]
) -> dict[str, float]:
    """One KCL worker draining the pre-loaded shard, then the lag."""
    with local_stack(home) as stack:
        assert stack.cloud is not None
        last = put_all(stack, messages)
        outputs = _outputs(stack)
        config = WorkerConfig(
            application_name=f"bench-kcl-{uuid.uuid4().hex[:8]}",
            stream_name=outputs["StreamName"],
            stream_arn=outputs["StreamArn"],
            table_name=outputs["TableName"],
            failure_queue_url=outputs["DeadLetterQueueUrl"],
            region=stack.cloud.region,
            endpoint_url=stack.cloud.endpoint_url,
            window_seconds=WINDOW_S,
            extra_properties=KCL_PROPERTIES,
        )
        workers = KclWorkers(config, 1, home / "kcl")
        log(f"kcl: {len(messages):,} records loaded; starting a worker (its lease bootstrap takes time) ...")
        workers.start()
        try:
            first = wait_for(
                lambda: _first_records_at(workers), KCL_START_TIMEOUT_S, "the KCL's first records", 0.2
            )
            wait_for(
                lambda: _kcl_checkpoint(stack, config.application_name) >= last,
                DRAIN_TIMEOUT_S,
                "the KCL's checkpoint at the last record",
            )
            # The processor logs the wall clock; the checkpoint is seen on the same clock.
            rate = len(messages) / (time.time() - first)
            log("kcl: short races to their final standings ...")
            lag = median_final_lag(stack, 73, lags, budget_until)
            return {"kcl_records_per_s": rate, "kcl_final_lag_s": lag}
        finally:
            workers.stop()


def run(quick: bool = False, log: Callable[[str], None] = print) -> dict[str, float]:
    """Both paths on the same workload: records/s on one shard and the lag to final standings."""
    messages = workload(50, 100 if quick else 200, seed=71)  # 5,000 or 10,000 records
    lags = 1 if quick else 3
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="alleycat-bench-kcl-") as home:
        # Each path gets its share of the lag sampling budget.
        figures = lambda_path(Path(home) / "lambda", messages, lags, started + LAG_BUDGET_S / 2, log)
        figures |= kcl_path(Path(home) / "kcl", messages, lags, started + LAG_BUDGET_S, log)
    figures["kcl_vs_lambda_records_ratio"] = figures["kcl_records_per_s"] / figures["lambda_records_per_s"]
    return figures


def main() -> None:
    """Run both paths and print the figures."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="5,000 records instead of 10,000")
    args = parser.parse_args()
    figures = run(args.quick, log=lambda line: print(line, file=sys.stderr, flush=True))
    width = max(map(len, figures))
    for name, value in figures.items():
        print(f"{name:<{width}}  {value:>12,.2f}")


if __name__ == "__main__":
    main()
