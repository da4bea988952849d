"""The capacity planner held against a real local run: predictions vs localcloud's CloudWatch metrics.

For each size ``make bench`` runs (1,000 and 10,000 racers, on one shard and on two), races run
through the whole local stack (localcloud with its Kinesis shard limits on: 1,000 records/s and
1 MiB/s written per shard) for a few short windows; then :func:`alleycat.plan.make_plan` is asked
about the same size and its records/s, bytes/s, item writes and publishes per window are compared
with what ``AWS/Kinesis``, ``AWS/DynamoDB`` and the functions' own metrics recorded for that run.

* 1,000 racers are sent plain (one JSON record a message), 10,000 through the KPL-aggregating
  producer with compressed batches (a plain shard holds ~1,000 racers).
* Two shards: the racers are split into two races whose raceIds hash to different shards (a race is
  one partition key, so it never spreads over shards); one shard: one race.
* Every size runs on one stack deployed with ``ShardCount=2``; a one-shard size puts its single
  race on one of them and the other idles, which is what a one-shard stream carries.
* Messages are all ``update`` events: ``final`` messages make the aggregator offer each racer's
  personal best, one conditional write each, which moto serves at ~25 ms apiece (minutes for
  10,000 racers) and which the planner counts per race, not per window.

:data:`TOLERANCES` says, per figure, how far the measurement may be from the plan and why.
``tests/integration/test_plan_validation.py`` asserts them; ``bench/bench_plan.py`` prints the
ratios. Nothing here runs at import.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from alleycat.plan import Plan, PlanInput, make_plan
from alleycat.stack import LocalStack
from producers import KinesisProducer, RetryPolicy
from simulator import RaceSpec, generate_race_messages

WINDOW_S = 2
# A race fills all its windows but the last, which gets one second: a second handed over late (a
# busy machine, or a plain race's throttled records retried) still lands in the race's last window,
# not in one more. 9 s is five 2 s windows.
RACE_S = 9
# 10,000 racers write 101 items a window into moto, which a busy machine takes seconds over: three
# windows (5 s) keep the run short and still hold whole windows.
RACE_S_10K = 5
STACK_SHARDS = 2
# Scheduled race closing would write every racer's result of an earlier size while a later one is
# measured; a grace longer than the whole run keeps it out (the maximum the template allows).
RACE_GRACE_S = 900
LINGER_S = 0.1  # the producer's linger: how long a part-filled batch waits for more messages
# A run that handed a second over more than a window late (the producer blocks while the local
# stack cannot take the load) has windows holding fragments of seconds, and per-window figures no
# longer describe devices sending at 1 Hz: such a run is repeated once, and if it is late again its
# per-window figures are reported but not held (records, bytes and units per item still are).
# Half a window: a run 1.8 s late in 2 s windows once made 8 merges in 5 windows on a busy machine
# (not pinned down; records arriving that late near a window's end are the likely trigger).
MAX_LATENESS_S = WINDOW_S / 2
STREAM_POLLS_S = 0.5  # two polls of a DynamoDB stream by its event source mapping
PER_WINDOW = frozenset({"item_writes_per_window", "race_windows_per_window", "publishes_per_window"})


@dataclass(frozen=True)
class ValidationSize:
    """``racers`` in all, split into one race per shard."""

    racers: int
    shards: int
    aggregate: bool
    race_s: int = RACE_S  # seconds of racing (see RACE_S)

    @property
    def label(self) -> str:
        """``1k_1shard``, ``10k_2shards``: the suffix of the bench figures."""
        return f"{self.racers // 1000}k_{self.shards}shard{'s' if self.shards > 1 else ''}"

    @property
    def races(self) -> int:
        """One race per shard."""
        return self.shards

    @property
    def racers_per_race(self) -> int:
        """Racers of each race."""
        return self.racers // self.races


SIZES = (
    ValidationSize(1_000, 1, aggregate=False),
    ValidationSize(1_000, 2, aggregate=False),
    ValidationSize(10_000, 1, aggregate=True, race_s=RACE_S_10K),
    ValidationSize(10_000, 2, aggregate=True, race_s=RACE_S_10K),
)


@dataclass(frozen=True)
class Tolerance:
    """How far the plan may be from the measurement: ``low <= planned / measured <= high``."""

    low: float
    high: float
    why: str


# Where the model and the measurement differ, figure by figure: bounds on planned / measured, for
# plain (False) and aggregated (True) records. Per-window figures count the windows the run's records
# were handed over in (see compare): the plan is held to what happens in a window, not to how
# punctually a busy machine sends.
TOLERANCES: dict[str, dict[bool, Tolerance]] = {
    "records_per_s": {
        False: Tolerance(
            0.98,
            1.02,
            "every message is one record, so the count is exact; records the shard throttles at its "
            "1,000/s are retried and counted once, when accepted",
        ),
        True: Tolerance(
            0.75,
            1.1,
            "the plan packs each second's messages into full 51,200-byte batches (per race), so the "
            "producer cannot use fewer records; it uses more when its 0.1 s linger ships a part-filled "
            "batch while a busy machine is still handing a second over (a third more allowed; 0.95-0.99 "
            "measured with the machine's load average at 15)",
        ),
    },
    "bytes_per_s": {
        False: Tolerance(
            0.97,
            1.03,
            "the plan encodes its own sample race; this race has other names and numbers",
        ),
        True: Tolerance(
            0.9,
            1.1,
            "compressed batches: the plan compresses the first two seconds of its own sample race, "
            "full batches only; this run compresses every second of other races, some batches "
            "part-filled (they compress worse); 0.99 measured",
        ),
    },
    "item_writes_per_window": dict.fromkeys(
        (False, True),
        Tolerance(
            0.85,
            1.3,
            "every bucket and the summary once per race per window, as planned, plus the shards' "
            "progress items, which the plan counts at once a second per shard carrying a race and the "
            "aggregator writes only on invocations that carry records (about half as often here, so "
            "the plan overstates: 1.08 at one shard, up to 1.12 at two, measured); a window a late "
            "second straddles holds only part of the racers and writes fewer buckets",
        ),
    ),
    "write_units_per_item": dict.fromkeys(
        (False, True),
        Tolerance(
            0.8,
            1.25,
            "bucket items grow through a race and the plan sizes them at mid-race; progress items "
            "are one unit each",
        ),
    ),
    "race_windows_per_window": dict.fromkeys(
        (False, True),
        Tolerance(
            0.9,
            1.25,
            "one merge (one summary change) per race per window, as planned; when a late second "
            "straddles a window's end, the race handed over first may have no record in the later "
            "window (one merge fewer: 9 of 10 or 5 of 6)",
        ),
    ),
    "publishes_per_window": dict.fromkeys(
        (False, True),
        Tolerance(
            0.6,
            5.0,
            "the plan's one standings message per race per window is a ceiling in the model, and the "
            "IoT cost is priced on it: the publisher publishes once for all changes of a race that "
            "reach it in one DynamoDB Streams batch, which happens whenever it runs behind the window "
            "(on this shared machine 2 publishes for 5 windows were seen), so the measured count may "
            "fall to one per race (a ratio of 5 for 5 windows); runs that did not yet wait for the "
            "table stream after draining published more than the merges (4 for 3, 7 for 6), the "
            "cause not pinned down (a publish of the previous size counted in the next is likely)",
        ),
    ),
}


@dataclass
class Measured:
    """What localcloud's CloudWatch metrics recorded for one size's run."""

    records: float  # AWS/Kinesis IncomingRecords, Sum
    bytes: float  # AWS/Kinesis IncomingBytes, Sum
    item_writes: float  # AWS/DynamoDB ConsumedWriteCapacityUnits, SampleCount (one per write)
    write_units: float  # the same, Sum
    publishes: float  # Alleycat StandingsPublished, Sum
    race_windows: float  # Alleycat RacesMerged, Sum: (race, window) merges the aggregator made
    throttled: float  # AWS/Kinesis WriteProvisionedThroughputExceeded, Sum
    failed: int  # records the producer gave up on
    lateness_s: float  # worst delay of a second's hand-over to the producer
    windows: int  # windows the race's records were handed over in (each race: the same ones)
    elapsed_s: float  # generating, sending, draining and reading the metrics
    phases_s: dict[str, float] = field(default_factory=dict)  # where elapsed_s went


@dataclass(frozen=True)
class Figure:
    """One planned figure against its measurement."""

    name: str
    planned: float
    measured: float
    tolerance: Tolerance
    held: bool = True  # False: reported only (a per-window figure of a run that fell behind)

    @property
    def ratio(self) -> float:
        """planned / measured (above 1: the plan overstates)."""
        return self.planned / self.measured if self.measured else math.inf

    @property
    def within(self) -> bool:
        """Within the tolerance."""
        return self.tolerance.low <= self.ratio <= self.tolerance.high

    @property
    def ok(self) -> bool:
        """Within the tolerance, or not held."""
        return self.within or not self.held

    def describe(self) -> str:
        """One line: the figure, both values, the ratio and the tolerance."""
        return (
            f"{self.name}: measured {self.measured:,.1f}, planned {self.planned:,.1f} "
            f"(ratio {self.ratio:.3f}, tolerance {self.tolerance.low:g}-{self.tolerance.high:g}"
            + ("" if self.held else ", not held: the run fell behind")
            + ")"
        )


@dataclass
class SizeResult:
    """One size: its plan, its measurement and the comparison."""

    size: ValidationSize
    plan: Plan
    measured: Measured
    figures: list[Figure] = field(default_factory=list)

    @property
    def failures(self) -> list[str]:
        """The figures outside their tolerance, described."""
        return [f.describe() for f in self.figures if not f.ok]


def validation_stack(home: Path) -> LocalStack:
    """A local stack for the validation: two shards, short windows, no race closing meanwhile."""
    return LocalStack(
        home=home,
        persist=False,
        parameters={
            "ShardCount": str(STACK_SHARDS),
            "WindowSeconds": str(WINDOW_S),
            "RaceGraceSeconds": str(RACE_GRACE_S),
        },
        # Close a race's last window soon after its last record (AWS waits for more records).
        window_idle_wait_s=0.5,
    )


def plan_for(size: ValidationSize, window_s: int = WINDOW_S) -> Plan:
    """What the planner says about ``size``: its races run at once, back to back."""
    return make_plan(
        PlanInput(
            racers=size.racers_per_race,
            races_per_hour=size.races * 3600 / size.race_s,
            viewers=0,
            window_s=window_s,
            aggregate=size.aggregate,
            race_s=size.race_s,
            shard_count=size.shards,
        )
    )


def _hash_key(partition_key: str) -> int:
    # Kinesis maps a partition key to a shard by the MD5 of the key as a 128-bit number.
    return int.from_bytes(hashlib.md5(partition_key.encode()).digest(), "big")


def race_ids_on_shards(kinesis: Any, stream_name: str, shards: int, base: int) -> list[int]:
    """One raceId from ``base`` up for each of the stream's first ``shards`` shards (hash ranges)."""
    ranges = [
        (int(s["HashKeyRange"]["StartingHashKey"]), int(s["HashKeyRange"]["EndingHashKey"]))
        for s in kinesis.list_shards(StreamName=stream_name)["Shards"]
        if "EndingSequenceNumber" not in s.get("SequenceNumberRange", {})
    ]
    if len(ranges) < shards:
        raise ValueError(f"the stream has {len(ranges)} open shards, {shards} are needed")
    chosen: list[int] = []
    candidate = base
    for low, high in sorted(ranges)[:shards]:
        while not low <= _hash_key(str(candidate)) <= high:
            candidate += 1
        chosen.append(candidate)
        candidate += 1
    return chosen


def _seconds_of(specs: Sequence[RaceSpec]) -> list[list[dict[str, Any]]]:
    """Each second's messages of every race, all ``update`` (see the module's docstring)."""
    per_race = [list(generate_race_messages(spec)) for spec in specs]
    return [
        [m | {"event": "update"} for race in per_race for m in race[second]]
        for second in range(specs[0].duration)
    ]


def _window_start(window_s: int) -> float:
    """The next window boundary at least 0.3 s away, plus a little (epoch seconds)."""
    # Windows are epoch-aligned on arrival time: starting just after a boundary, a race touches
    # exactly ceil(race_s / window_s) of them when nothing runs more than a second late.
    now = time.time()
    start = math.ceil(now / window_s) * window_s + 0.05
    return start + window_s if start - now < 0.3 else start


def _windows(begin: float, end: float, window_s: int) -> set[int]:
    """Ids (epoch time // window) of the windows ``[begin, end]`` overlaps."""
    return set(range(int(begin // window_s), int(end // window_s) + 1))


def _send_paced(
    producer: KinesisProducer, seconds: list[list[dict[str, Any]]], start: float, window_s: int
) -> tuple[float, set[int], int]:
    """Send each second's messages at 1 Hz from ``start``; the worst lateness, the windows the
    records were delivered in, and how many failed.

    Each second is flushed once handed over (devices send once a second, and the plan drains the
    aggregator after each second too), so its records are delivered before the clock is read: the
    windows noted are those of the records' arrival, not of a hand-over the producer may still be
    queueing. The messages were generated for a race starting at epoch 0; each keeps the
    simulator's ``deviceTimestamp`` (its second plus its device's clock offset), moved to ``start``,
    as devices send them: stamping them all alike would make them compress better than the plan's
    sample and than real traffic.
    """
    start_ms = int(start * 1000)
    worst = 0.0
    failed = 0
    windows: set[int] = set()
    for index, messages in enumerate(seconds):
        due = start + index
        time.sleep(max(0.0, due - time.time()))
        begin = time.time()
        for message in messages:
            message["deviceTimestamp"] += start_ms
            producer.put(orjson.dumps(message), message["raceId"])
        failed += len(producer.flush().failed)
        windows |= _windows(begin, time.time(), window_s)
        worst = max(worst, time.time() - due)
    return worst, windows, failed


def _metric(
    cloudwatch: Any,
    *,
    namespace: str,
    name: str,
    dims: dict[str, str],
    stat: str,
    since: datetime,
    until: datetime,
) -> float:
    """The ``stat`` (Sum or SampleCount) of a metric over [since, until), added over periods."""
    answer = cloudwatch.get_metric_statistics(
        Namespace=namespace,
        MetricName=name,
        Dimensions=[{"Name": k, "Value": v} for k, v in dims.items()],
        StartTime=since,
        EndTime=until,
        Period=60,
        Statistics=[stat],
    )
    return float(sum(point[stat] for point in answer["Datapoints"]))


def measure(
    stack: LocalStack,
    size: ValidationSize,
    *,
    race_id_base: int,
    window_s: int = WINDOW_S,
    drain_timeout_s: float = 60.0,
) -> Measured:
    """Race ``size`` through ``stack`` and read what the metrics recorded for exactly this run.

    The stack must be idle before (the previous size drained): the metrics are read from the
    second this run starts to the second after it drained.
    """
    cloud = stack.cloud
    assert cloud is not None, "start the stack first"
    began = time.monotonic()
    outputs = stack.stacks["alleycat"].outputs
    stream = outputs["StreamName"]
    race_ids = race_ids_on_shards(cloud.client("kinesis"), stream, size.shards, race_id_base)
    specs = [
        RaceSpec(race_id=rid, class_id=1 + i, racers=size.racers_per_race, duration=size.race_s, seed=18 + i)
        for i, rid in enumerate(race_ids)
    ]
    seconds = _seconds_of(specs)  # generated before the start: 10,000 racers take a while
    phases = {"generate": time.monotonic() - began}
    start = _window_start(window_s)
    since = datetime.now(UTC).replace(microsecond=0)
    producer = KinesisProducer(
        stream_name=stream,
        client=cloud.client("kinesis"),
        aggregate=size.aggregate,
        compress=size.aggregate,
        linger_seconds=LINGER_S,
        retry_policy=RetryPolicy(record_ttl=30.0),
    )
    try:
        lateness, windows, failed = _send_paced(producer, seconds, start, window_s)
    finally:
        failed_at_close = len(producer.close().failed)
    phases["send"] = time.monotonic() - began - sum(phases.values())
    if not cloud.wait_for_mappings(timeout=drain_timeout_s, include_windows=True):
        raise TimeoutError(f"{size.label}: the pipeline did not drain in {drain_timeout_s:.0f} s")
    # The last window's summary write reaches the publisher through the table's stream, polled
    # 4 times a second: drain again after two polls, so the last publish is counted in this size's
    # metrics and not in the next one's.
    time.sleep(STREAM_POLLS_S)
    if not cloud.wait_for_mappings(timeout=drain_timeout_s, include_windows=True):
        raise TimeoutError(f"{size.label}: the publisher did not drain in {drain_timeout_s:.0f} s")
    cloud.flush_metrics()
    phases["drain"] = time.monotonic() - began - sum(phases.values())
    until = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    cw = cloud.client("cloudwatch")
    kinesis_dims = {"StreamName": stream}
    table = {"TableName": outputs["TableName"]}
    service = {"service": "alleycat"}

    def metric(namespace: str, name: str, dims: dict[str, str], stat: str = "Sum") -> float:
        return _metric(cw, namespace=namespace, name=name, dims=dims, stat=stat, since=since, until=until)

    measured = Measured(
        records=metric("AWS/Kinesis", "IncomingRecords", kinesis_dims),
        bytes=metric("AWS/Kinesis", "IncomingBytes", kinesis_dims),
        item_writes=metric("AWS/DynamoDB", "ConsumedWriteCapacityUnits", table, "SampleCount"),
        write_units=metric("AWS/DynamoDB", "ConsumedWriteCapacityUnits", table),
        publishes=metric("Alleycat", "StandingsPublished", service),
        race_windows=metric("Alleycat", "RacesMerged", service),
        throttled=metric("AWS/Kinesis", "WriteProvisionedThroughputExceeded", kinesis_dims),
        failed=failed + failed_at_close,
        lateness_s=lateness,
        windows=len(windows),
        elapsed_s=time.monotonic() - began,
    )
    measured.phases_s = phases | {"read": measured.elapsed_s - sum(phases.values())}
    return measured


def compare(size: ValidationSize, plan: Plan, measured: Measured, window_s: int = WINDOW_S) -> list[Figure]:
    """Each planned figure against the measured one, with its tolerance.

    Per-window figures are per window the run's records were handed over in: the plan's
    ``ceil(race_s / window_s)`` when every second is on time, one more when a second straddles a
    window's end, one fewer when a second is so late that a window gets none. The plan's claim is
    what happens in each window, not how punctual this machine is.
    """
    race_s = size.race_s
    windows = max(1, measured.windows)
    # All races' window writes, plus each carrying shard's progress item for the window's seconds.
    progress = window_s * plan.progress_writes_per_s
    planned_writes = size.races * plan.item_writes_per_window + progress
    planned_units = size.races * plan.wcu_per_window + progress

    def tol(name: str) -> Tolerance:
        return TOLERANCES[name][size.aggregate]

    paced = measured.lateness_s <= MAX_LATENESS_S
    figures = [
        Figure("records_per_s", plan.records_per_s, measured.records / race_s, tol("records_per_s")),
        Figure("bytes_per_s", plan.bytes_per_s, measured.bytes / race_s, tol("bytes_per_s")),
        Figure(
            "item_writes_per_window",
            planned_writes,
            measured.item_writes / windows,
            tol("item_writes_per_window"),
        ),
        Figure(
            "write_units_per_item",
            planned_units / planned_writes,
            measured.write_units / max(1.0, measured.item_writes),
            tol("write_units_per_item"),
        ),
        Figure(
            "race_windows_per_window",
            plan.publishes_per_window,  # races at once: one merge each per window
            measured.race_windows / windows,
            tol("race_windows_per_window"),
        ),
        Figure(
            "publishes_per_window",
            plan.publishes_per_window,
            measured.publishes / windows,
            tol("publishes_per_window"),
        ),
    ]
    return [replace(f, held=paced or f.name not in PER_WINDOW) for f in figures]


def warm_up(stack: LocalStack) -> None:
    """A short race on every shard, measured and thrown away, before the first size: the first
    invocations start the functions' environments. Two busy runs merged the first size's windows
    more than once (8 and 7 merges for 5 windows); the start-up is the likely cause, not the model."""
    measure(
        stack, ValidationSize(100, STACK_SHARDS, aggregate=False, race_s=3), race_id_base=fresh_race_id_base()
    )


def measure_paced(stack: LocalStack, size: ValidationSize, *, attempts: int = 2) -> Measured:
    """:func:`measure` with fresh races, repeated (up to ``attempts``) while it falls behind."""
    measured = measure(stack, size, race_id_base=fresh_race_id_base())
    for _ in range(attempts - 1):
        if measured.lateness_s <= MAX_LATENESS_S:
            break
        measured = measure(stack, size, race_id_base=fresh_race_id_base())
    return measured


def fresh_race_id_base() -> int:
    """A raceId range of its own for each run (ten digits, like the simulator's)."""
    return 5_000_000_000 + int(time.time() * 10) % 100_000_000 * 10


def validate(
    stack: LocalStack,
    sizes: Sequence[ValidationSize] = SIZES,
    *,
    log: Callable[[str], None] = lambda _line: None,
) -> list[SizeResult]:
    """Measure every size on ``stack`` (started, idle) and compare each with its plan."""
    results: list[SizeResult] = []
    for size in sizes:
        plan = plan_for(size)
        measured = measure_paced(stack, size)
        result = SizeResult(size, plan, measured, compare(size, plan, measured))
        results.append(result)
        log(
            f"{size.label}: {measured.elapsed_s:.1f} s ("
            + ", ".join(f"{k} {v:.1f}" for k, v in measured.phases_s.items())
            + f"), lateness {measured.lateness_s:.2f} s, {measured.windows} windows, "
            f"{measured.race_windows:.0f} race-windows merged, {measured.throttled:.0f} records throttled; "
            + "; ".join(f.describe() for f in result.figures)
        )
    return results


def ratios(results: Sequence[SizeResult]) -> dict[str, float]:
    """``plan_<figure>_ratio_<size>`` = planned / measured, for the bench's table."""
    short = {
        "records_per_s": "records",
        "bytes_per_s": "bytes",
        "item_writes_per_window": "writes",
        "write_units_per_item": "wcu_per_item",
        "race_windows_per_window": "merges",
        "publishes_per_window": "publishes",
    }
    out: dict[str, float] = {}
    for result in results:
        for figure in result.figures:
            out[f"plan_{short[figure.name]}_ratio_{result.size.label}"] = figure.ratio
    return out


__all__ = [
    "SIZES",
    "TOLERANCES",
    "Figure",
    "Measured",
    "SizeResult",
    "Tolerance",
    "ValidationSize",
    "compare",
    "measure",
    "measure_paced",
    "plan_for",
    "ratios",
    "validate",
    "validation_stack",
]
