"""The planner's predictions against what localcloud's CloudWatch metrics record in the same run.

A real race (1,000 racers, one shard, plain records, 2 s windows) runs through the local stack;
then the planner is asked about the same size and its records/s, bytes/s, item writes and publishes
per window are compared with AWS/Kinesis, AWS/DynamoDB and the publisher's EMF metrics.

Tolerances, and why:

* records: 2 %. Every message is one record, so the count is exact; the slack only absorbs the
  clock (records/s is the count over the race's duration).
* bytes: 5 %. The planner encodes its own sample race; this race has other names and numbers.
* item writes: three windows' writes (3 x 12). A race's seconds straddle window boundaries (16 s of
  messages touch 8 or 9 two-second windows) and records the shard throttles at its 1,000/s limit are
  retried into the next window; the race closer adds a summary write.
* write units per item the windows write: 25 %. Bucket items grow through a race; the planner sizes
  them at mid-race.
* publishes: per window, within three windows of the prediction either way. The publisher skips a
  window whose summary change arrives in the same stream batch as the next one (BENCHMARKS.md saw 7
  updates for 8-9 windows on a busy machine); on a busy machine records the shard throttled are
  retried into one or two windows past the race's last second, and closing the race publishes once
  more (10 publishes for 8 windows were seen with another test suite running beside this one).
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from alleycat.plan import PlanInput, make_plan
from alleycat.stack import LocalStack
from producers import KinesisProducer
from simulator import RaceRunner, plan_races

pytestmark = pytest.mark.integration

RACERS = 1000
DURATION_S = 16
WINDOW_S = 2
TIME_BUDGET_S = 90.0


def _metric_total(
    cloudwatch: Any, namespace: str, name: str, dims: dict[str, str], stat: str, since: datetime
) -> float:
    """The ``stat`` (Sum or SampleCount) of a metric from ``since`` until now, added over periods."""
    answer = cloudwatch.get_metric_statistics(
        Namespace=namespace,
        MetricName=name,
        Dimensions=[{"Name": k, "Value": v} for k, v in dims.items()],
        StartTime=since,
        EndTime=datetime.now(UTC) + timedelta(minutes=1),
        Period=60,
        Statistics=[stat],
    )
    return float(sum(point[stat] for point in answer["Datapoints"]))


def test_planner_predictions_match_the_metrics_of_a_local_race(tmp_path: Path) -> None:
    deadline = time.monotonic() + TIME_BUDGET_S
    stack = LocalStack(
        home=tmp_path, persist=False, parameters={"WindowSeconds": str(WINDOW_S)}, window_idle_wait_s=0.5
    )
    stack.start()
    try:
        cloud = stack.cloud
        assert cloud is not None
        outputs = stack.stacks["alleycat"].outputs
        since = datetime.now(UTC) - timedelta(minutes=1)
        spec = plan_races([1], RACERS, duration=DURATION_S, seed=18, start_epoch_ms=int(time.time() * 1000))[
            0
        ]
        with KinesisProducer(stream_name=outputs["StreamName"], client=cloud.client("kinesis")) as producer:
            summary = RaceRunner([spec], producer, speed=1.0).run()
        assert summary.failed == 0, summary.failures_by_code
        # Every record aggregated, every window closed, every summary change published.
        remaining = max(1.0, deadline - time.monotonic() - 5)
        assert cloud.wait_for_mappings(timeout=remaining, include_windows=True), "the pipeline did not drain"
        cloud.flush_metrics()

        cw = cloud.client("cloudwatch")
        stream = {"StreamName": outputs["StreamName"]}
        table = {"TableName": outputs["TableName"]}
        records = _metric_total(cw, "AWS/Kinesis", "IncomingRecords", stream, "Sum", since)
        data_bytes = _metric_total(cw, "AWS/Kinesis", "IncomingBytes", stream, "Sum", since)
        writes = _metric_total(cw, "AWS/DynamoDB", "ConsumedWriteCapacityUnits", table, "SampleCount", since)
        wcu = _metric_total(cw, "AWS/DynamoDB", "ConsumedWriteCapacityUnits", table, "Sum", since)
        published = _metric_total(cw, "Alleycat", "StandingsPublished", {"service": "alleycat"}, "Sum", since)
    finally:
        stack.stop()

    plan = make_plan(
        PlanInput(
            racers=RACERS, races_per_hour=3600 / DURATION_S, viewers=0, window_s=WINDOW_S, race_s=DURATION_S
        )
    )
    windows = math.ceil(DURATION_S / WINDOW_S)
    predicted_wcu = windows * plan.wcu_per_window + RACERS  # the windows' puts and one PB per racer
    checks = {
        "records/s": (records / DURATION_S, plan.records_per_s, 0.02),
        "bytes/s": (data_bytes / DURATION_S, plan.bytes_per_s, 0.03),
        # Per item written by the windows (a personal best is one small item, one unit): this checks
        # the planner's item sizes whatever the number of windows the race straddled.
        "write units per window item": (
            (wcu - RACERS) / max(1.0, writes - RACERS),
            plan.wcu_per_window / plan.item_writes_per_window,
            0.25,
        ),
    }
    failures = [
        f"{name}: measured {got:,.1f}, planned {want:,.1f} (tolerance {tol:.0%})"
        for name, (got, want, tol) in checks.items()
        if got != pytest.approx(want, rel=tol)
    ]
    if abs(writes - plan.item_writes_per_race) > 3 * plan.item_writes_per_window:
        failures.append(
            f"item writes: measured {writes:,.0f}, planned {plan.item_writes_per_race:,} "
            f"(tolerance 3 windows x {plan.item_writes_per_window})"
        )
    per_window = published / plan.publishes_per_window
    if not windows - 3 <= per_window <= windows + 3:
        failures.append(
            f"publishes: {published:.0f} for {windows} windows at {plan.publishes_per_window:g} each"
        )
    print(  # the figures, for the record (pytest -s)
        f"records {records:.0f}, bytes {data_bytes:.0f}, item writes {writes:.0f}, WCU {wcu:.0f}, "
        f"publishes {published:.0f}; planned per race: {plan.records_per_s * DURATION_S:.0f} records, "
        f"{plan.bytes_per_s * DURATION_S:.0f} bytes, {plan.item_writes_per_race} item writes, "
        f"{predicted_wcu} WCU, {plan.publishes_per_window * windows:.0f} publishes"
    )
    assert not failures, "; ".join(failures)
    assert time.monotonic() < deadline + 10, "the validation ran past its time budget"
