"""``alleycat plan``: capacity and monthly cost of running Alleycat on AWS at a given size.

The model multiplies per-unit figures by the load:

* **measured at plan time** from the project's own code: bytes and Kinesis records per race-second
  (real simulator messages encoded plain, or packed into compressed batches by the producer's
  :class:`~producers.aggregation.PartitionAggregator`); item writes per window from the domain's
  bucket layout (:func:`leaderboard.domain.bucket_of`); the size of a bucket item, the race summary
  item and a standings message, built with the adapters' and the publisher's own encoders;
* **measured by** ``make bench``: the aggregator's CPU-seconds per message
  (``bench/results/latest.json``), turned into Lambda GB-seconds at template.yaml's memory size;
* **sourced**: prices and service limits from ``alleycat/data/aws_prices.json`` (each with its page
  and the date it was read), plus the few documented assumptions the project does not measure yet.

Everything here is pure (no AWS calls); :func:`render` prints a plan with rich.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from alleycat.argtypes import int_range, positive_float
from consumers.publisher.core import standings_message, standings_topic
from leaderboard.adapters.items import bucket_sk, encode_scores, race_pk, race_to_item
from leaderboard.domain import BUCKET_SIZE, RacerScore, RaceSummary, bucket_of, rank_scores
from leaderboard.domain.race import BucketCount
from producers.aggregation import PartitionAggregator
from producers.limits import KPL_AGGREGATION_MAX_BYTES
from simulator import MAX_RACERS, RaceSpec, generate_race_messages

REPO_ROOT = Path(__file__).resolve().parents[1]
BENCH_RESULTS = REPO_ROOT / "bench" / "results" / "latest.json"
TEMPLATE = REPO_ROOT / "template.yaml"
SECONDS_PER_HOUR = 3600
GIB = 1024**3
# BENCHMARKS.md's recorded run, used when bench/results/latest.json is absent (a fresh checkout).
FALLBACK_AGGREGATOR_MESSAGES_PER_CPU_S = 380_405.0
# template.yaml's values, used when the template is not next to the package (an installed wheel).
FALLBACK_MEMORY_MB = {"AggregatorFunction": 1024, "PublisherFunction": 512, "ApiFunction": 512}
SAMPLE_RACE_ID = 1_234_567_890  # ten digits, like the simulator's raceIds
SAMPLE_START_MS = 1_764_633_600_000  # 2025-12-02T00:00:00Z


# -- data: prices, limits, assumptions ---------------------------------------------------------------


@dataclass(frozen=True)
class PriceBook:
    """The prices, limits and assumptions of one region, as read from the data file."""

    region: str
    read_on: str
    prices: Mapping[str, float]
    limits: Mapping[str, float]
    assumptions: Mapping[str, float]
    sources: Mapping[str, str]


def load_prices(region: str = "us-east-1", path: Path | None = None) -> PriceBook:
    """Read ``aws_prices.json`` (the packaged one unless ``path``); ``ValueError`` for an unknown region."""
    if path is None:
        text = resources.files("alleycat").joinpath("data/aws_prices.json").read_text(encoding="utf-8")
    else:
        text = path.read_text(encoding="utf-8")
    data = json.loads(text)
    regions = data["regions"]
    if region not in regions:
        raise ValueError(
            f"no prices for region {region!r} in the data file (have: {', '.join(sorted(regions))})"
        )
    entry = regions[region]
    sources = {name: fig["source"] for group in ("prices", "limits") for name, fig in entry[group].items()}
    return PriceBook(
        region=region,
        read_on=str(data["read_on"]),
        prices={name: float(fig["value"]) for name, fig in entry["prices"].items()},
        limits={name: float(fig["value"]) for name, fig in entry["limits"].items()},
        assumptions={
            name: float(fig["value"]) for name, fig in data["assumptions"].items() if not name.startswith("_")
        },
        sources=sources,
    )


def function_memory_mb(template: Path = TEMPLATE) -> dict[str, int]:
    """Each function's ``MemorySize`` in template.yaml (the Globals value where a function sets none).

    A line scan rather than a YAML load: the template's ``!Ref``/``!GetAtt`` tags need a custom loader
    and only two keys matter here.
    """
    if not template.exists():
        return dict(FALLBACK_MEMORY_MB)
    default = 128
    memory: dict[str, int] = {}
    section = resource = ""
    for line in template.read_text(encoding="utf-8").splitlines():
        if re.match(r"^\S", line):
            section, resource = line.rstrip(":"), ""
        elif section == "Resources" and (m := re.match(r"^  (\w+):\s*$", line)):
            resource = m.group(1)
        elif m := re.match(r"^\s+MemorySize:\s*(\d+)", line):
            if section == "Globals":
                default = int(m.group(1))
            elif resource:
                memory[resource] = int(m.group(1))
        elif section == "Resources" and resource and re.match(r"^    Type: AWS::Serverless::Function", line):
            memory.setdefault(resource, -1)
    return {name: (default if mb < 0 else mb) for name, mb in memory.items()}


def aggregator_messages_per_cpu_s(path: Path = BENCH_RESULTS) -> tuple[float, str]:
    """The aggregator's throughput per CPU-second from ``make bench`` (with where it came from)."""
    if path.exists():
        value = json.loads(path.read_text(encoding="utf-8")).get("aggregator_records_per_s")
        if isinstance(value, int | float) and value > 0:
            return float(value), f"{path.name} aggregator_records_per_s"
    return FALLBACK_AGGREGATOR_MESSAGES_PER_CPU_S, "BENCHMARKS.md recorded run (no bench results found)"


# -- per-unit figures measured from the project's code -------------------------------------------------


@dataclass(frozen=True)
class StreamFigures:
    """What one race-second of ``racers`` messages costs on the stream."""

    records: float  # Kinesis records per race-second
    bytes: float  # data + partition key, per race-second
    message_bytes: float  # mean JSON message


def _sample_seconds(racers: int, seconds: int = 2) -> list[list[bytes]]:
    """Encoded messages of the first ``seconds`` of a simulated race (what devices send)."""
    # A real epoch start: deviceTimestamp is then 13 digits, as devices send (a start of 0 would
    # make every message ~10 bytes shorter than on the wire).
    spec = RaceSpec(
        race_id=SAMPLE_RACE_ID,
        class_id=1,
        racers=racers,
        duration=300,
        seed=0,
        start_epoch_ms=SAMPLE_START_MS,
    )
    out: list[list[bytes]] = []
    for index, messages in enumerate(generate_race_messages(spec)):
        if index == seconds:
            break
        out.append([orjson.dumps(m) for m in messages])
    return out


@cache
def stream_figures(racers: int, aggregate: bool) -> StreamFigures:
    """Records and bytes per race-second, measured by encoding real simulator messages.

    Aggregated, each second's burst goes through the producer's compressing aggregator and is then
    drained, as its linger flush does after a burst. Above the simulator's 10,000 racers the figures
    of 10,000 are scaled linearly (records round up per race).
    """
    sample = min(racers, MAX_RACERS)
    seconds = _sample_seconds(sample)
    key = str(SAMPLE_RACE_ID)
    messages = sum(len(s) for s in seconds)
    message_bytes = sum(len(m) for s in seconds for m in s) / messages
    if not aggregate:
        records = float(sample)
        data = sum(len(m) + len(key) for s in seconds for m in s) / len(seconds)
    else:
        aggregator = PartitionAggregator(KPL_AGGREGATION_MAX_BYTES, compress=True)
        finished = []
        for second in seconds:
            for payload in second:
                done, accepted = aggregator.add(key, payload)
                finished += done
                assert accepted, "simulator messages always fit a batch"
            finished += aggregator.drain()
        records = len(finished) / len(seconds)
        data = sum(len(r.data) + len(key) for r in finished) / len(seconds)
    scale = racers / sample
    return StreamFigures(
        records=math.ceil(records * scale) if aggregate else records * scale,
        bytes=data * scale,
        message_bytes=message_bytes,
    )


def attribute_size(value: Mapping[str, Any]) -> int:
    """DynamoDB's size of one attribute value in DynamoDB JSON (the rule it bills by)."""
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(str(inner).encode())
    if kind == "B":
        return len(inner)
    if kind == "N":
        digits = str(inner).lstrip("-").replace(".", "").strip("0") or "0"
        return (len(digits) + 1) // 2 + 1
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(1 + attribute_size(v) for v in inner)
    if kind == "M":
        return 3 + sum(len(k.encode()) + 1 + attribute_size(v) for k, v in inner.items())
    return 0


def item_size(item: Mapping[str, Any]) -> int:
    """DynamoDB's size of an item: attribute names plus values."""
    return sum(len(name.encode()) + attribute_size(value) for name, value in item.items())


@dataclass(frozen=True)
class TableFigures:
    """Item sizes of one race, built with the adapters' own encoders."""

    buckets: int
    bucket_bytes: int  # one full bucket item at mid-race (the average over a race)
    summary_bytes: int
    standings_bytes: int  # one standings message with its topic (what IoT meters)


def _scores(racers: int, seconds: int) -> list[RacerScore]:
    """Plausible scores after ``seconds`` seconds: names and outputs from the simulator's first second."""
    rows = [orjson.loads(m) for m in _sample_seconds(min(racers, BUCKET_SIZE * 5), 1)[0]]
    scores = []
    for row in rows:
        output = (row["cadence"] + 35) * (row["resistance"] + 65) * 100  # ten-thousandths
        scores.append(
            RacerScore(
                racer_id=row["racerId"],
                name=row["name"],
                total=output * seconds,
                seen=(1 << (seconds + 1)) - 2,  # seconds 1..seconds counted
                last_second=seconds,
                last_output=output,
            )
        )
    return scores


@cache
def table_figures(racers: int, race_s: int, top_n: int) -> TableFigures:
    """Bucket, summary and standings sizes for a race of ``racers`` dense ids (1..racers)."""
    buckets = bucket_of(racers) - bucket_of(1) + 1
    scores = _scores(racers, max(1, race_s // 2))
    bucket = {s.racer_id: s for s in scores[:BUCKET_SIZE]}
    bucket_item = {
        "pk": {"S": race_pk(SAMPLE_RACE_ID)},
        "sk": {"S": bucket_sk(buckets)},
        "version": {"N": str(race_s)},
        "fmt": {"N": "2"},
        "racers": {"B": encode_scores(bucket)},
    }
    summary = RaceSummary(
        race_id=SAMPLE_RACE_ID,
        class_id=1,
        racers=racers,
        finished_racers=0,
        updated_at=datetime(2026, 1, 1, tzinfo=UTC),
        version=race_s,
        first_device_ts=1_700_000_000_000,
        last_device_ts=1_700_000_300_000,
        max_second=race_s,
        buckets={b: BucketCount(BUCKET_SIZE, 0, race_s) for b in range(buckets)},
    )
    standings = rank_scores(scores)
    message = standings_message(summary, standings, top_n)
    topic = standings_topic("alleycat", SAMPLE_RACE_ID)
    return TableFigures(
        buckets=buckets,
        bucket_bytes=item_size(bucket_item),
        summary_bytes=item_size(race_to_item(summary)),
        standings_bytes=len(message) + len(topic.encode()),
    )


# -- the model --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanInput:
    """What the operator asks about."""

    racers: int  # per race
    races_per_hour: float
    viewers: int  # concurrent, while races run
    window_s: int = 5
    aggregate: bool = False
    region: str = "us-east-1"
    race_s: int = 300
    top_n: int = 50
    cdn: bool = False
    stream_mode: str | None = None  # PROVISIONED / ON_DEMAND; None: the cheaper
    shard_count: int | None = None  # template.yaml's ShardCount when set; the plan never uses fewer


@dataclass
class Limit:
    """A service limit, the demand on it, and what to change when it binds."""

    name: str
    demand: float
    limit: float
    unit: str
    change: str
    soft: bool = False  # exceeding it costs more (early writes), it does not fail

    @property
    def utilization(self) -> float:
        """Demand as a share of the limit."""
        return self.demand / self.limit if self.limit else math.inf


@dataclass
class Plan:
    """Capacity, cost and limits of one input."""

    inputs: PlanInput
    # load
    concurrent_races: float
    peak_races: int
    messages_per_s: float
    records_per_s: float
    bytes_per_s: float
    bytes_per_message: float
    # stream
    shards: int
    stream_mode: str
    # table
    buckets_per_race: int
    item_writes_per_window: int  # per race
    item_writes_per_race: int
    wcu_per_window: int  # per race
    progress_writes_per_s: float  # the aggregators' shard-progress items, at most one per shard a second
    write_units_per_s: float  # peak, averaged over a window
    read_units_per_s: float
    window_burst_wcu: float  # all races' windows close together (tumbling windows align)
    # functions
    aggregator_invocations_per_s: float
    aggregator_gb_s_per_s: float
    aggregator_concurrency: int
    publisher_invocations_per_s: float
    publisher_gb_s_per_s: float
    api_requests_per_s: float
    api_gb_s_per_s: float
    lambda_concurrency: float
    # IoT
    publishes_per_window: float  # all live races
    publishes_per_s: float
    deliveries_per_s: float
    standings_message_bytes: int
    # cost
    monthly_cost: dict[str, float]
    cost_per_race: float
    limits: list[Limit]
    binding: Limit
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def monthly_total(self) -> float:
        """Sum of the services' monthly costs."""
        return sum(self.monthly_cost.values())

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (``--json``)."""
        body = asdict(self)
        body["limits"] = [asdict(lim) | {"utilization": lim.utilization} for lim in self.limits]
        body["binding"] = asdict(self.binding) | {"utilization": self.binding.utilization}
        body["monthly_total"] = self.monthly_total
        return body


def binding_limit(limits: Sequence[Limit]) -> Limit:
    """The hard limit nearest to (or furthest past) its ceiling.

    Soft limits (passing them costs more, nothing fails) are listed but never bind.
    """
    return max((lim for lim in limits if not lim.soft), key=lambda lim: lim.utilization)


def _stream_cost(
    mode: str, shards: int, records_per_s: float, record_bytes: float, prices: PriceBook
) -> float:
    """Monthly Kinesis cost at an average of ``records_per_s`` records of ``record_bytes``."""
    p, lim = prices.prices, prices.limits
    hours = prices.assumptions["hours_per_month"]
    per_month = records_per_s * hours * SECONDS_PER_HOUR
    if mode == "PROVISIONED":
        units = math.ceil(record_bytes / lim["kinesis_put_payload_unit_bytes"]) if record_bytes else 0
        return (
            shards * hours * p["kinesis_shard_hour"]
            + per_month * units / 1e6 * p["kinesis_put_payload_unit_million"]
        )
    rounding = lim["kinesis_on_demand_record_rounding_bytes"]
    billed_gb = per_month * math.ceil(record_bytes / rounding) * rounding / GIB if record_bytes else 0.0
    # One consumer (the aggregator) reads everything once.
    return hours * p["kinesis_on_demand_stream_hour"] + billed_gb * (
        p["kinesis_on_demand_gb_in"] + p["kinesis_on_demand_gb_out"]
    )


def make_plan(
    inputs: PlanInput,
    prices: PriceBook | None = None,
    *,
    messages_per_cpu_s: float | None = None,
    memory_mb: Mapping[str, int] | None = None,
) -> Plan:
    """The capacity, cost and binding limit of ``inputs``."""
    if inputs.racers < 1 or inputs.races_per_hour <= 0 or inputs.viewers < 0 or inputs.window_s < 1:
        raise ValueError("racers >= 1, races per hour > 0, viewers >= 0 and window >= 1 s are needed")
    prices = prices or load_prices(inputs.region)
    p, lim, a = prices.prices, prices.limits, prices.assumptions
    sources = dict(prices.sources)
    if messages_per_cpu_s is None:
        messages_per_cpu_s, sources["aggregator_cpu"] = aggregator_messages_per_cpu_s()
    memory = dict(memory_mb or function_memory_mb())
    hours = a["hours_per_month"]
    month_s = hours * SECONDS_PER_HOUR

    # -- load: races overlap when they start more often than they last
    concurrent = inputs.races_per_hour * inputs.race_s / SECONDS_PER_HOUR
    peak_races = max(1, math.ceil(concurrent))
    duty = min(1.0, concurrent / peak_races)  # share of the month the peak load runs
    sf = stream_figures(inputs.racers, inputs.aggregate)
    messages_per_s = peak_races * inputs.racers
    records_per_s = peak_races * sf.records
    bytes_per_s = peak_races * sf.bytes

    # -- stream: a race is one partition key, so one race always lands on one shard
    shards = max(
        1,
        inputs.shard_count or 1,
        math.ceil(records_per_s / lim["kinesis_shard_records_per_s"]),
        math.ceil(bytes_per_s / lim["kinesis_shard_bytes_per_s"]),
    )
    record_bytes = sf.bytes / sf.records
    stream_costs = {
        mode: _stream_cost(mode, shards, records_per_s * duty, record_bytes, prices)
        for mode in ("PROVISIONED", "ON_DEMAND")
    }
    stream_mode = inputs.stream_mode or min(stream_costs, key=lambda m: stream_costs[m])

    # -- table: one conditional put per bucket and one of the summary per window, a PB per racer
    tf = table_figures(inputs.racers, inputs.race_s, inputs.top_n)
    windows_per_race = math.ceil(inputs.race_s / inputs.window_s)
    writes_per_window = tf.buckets + 1
    writes_per_race = windows_per_race * writes_per_window + inputs.racers
    wcu_bucket = math.ceil(tf.bucket_bytes / lim["dynamodb_write_unit_bytes"])
    wcu_summary = math.ceil(tf.summary_bytes / lim["dynamodb_write_unit_bytes"])
    wcu_window = tf.buckets * wcu_bucket + wcu_summary
    pb_wcu_per_s = peak_races * inputs.racers / inputs.race_s  # spread evenly over a race, averaged
    # Each shard's aggregator records how far it has read (for the race closer), at most once a
    # second while records arrive: one small item each, found by the validation against a local run.
    progress_writes_per_s = float(min(shards, peak_races))
    write_units_per_s = peak_races * wcu_window / inputs.window_s + pb_wcu_per_s + progress_writes_per_s
    read_unit = lim["dynamodb_read_unit_bytes"]
    # The aggregator reads the touched buckets, the publisher the summary and the whole race.
    rcu_window = tf.buckets * math.ceil(tf.bucket_bytes / read_unit) + 1
    rcu_window += math.ceil(tf.buckets * tf.bucket_bytes / read_unit) + 1
    api_rps = inputs.viewers * a["api_requests_per_viewer_per_race"] / inputs.race_s
    api_origin_rps = api_rps * ((1 - a["api_cdn_hit_ratio"]) if inputs.cdn else 1.0)
    read_units_per_s = peak_races * rcu_window / inputs.window_s + api_origin_rps
    window_burst = peak_races * wcu_window

    # -- functions
    vcpu = {name: min(1.0, mb / lim["lambda_mb_per_vcpu"]) for name, mb in memory.items()}
    agg_mb = memory.get("AggregatorFunction", FALLBACK_MEMORY_MB["AggregatorFunction"])
    pub_mb = memory.get("PublisherFunction", FALLBACK_MEMORY_MB["PublisherFunction"])
    api_mb = memory.get("ApiFunction", FALLBACK_MEMORY_MB["ApiFunction"])
    # The mapping waits up to 1 s for a batch of up to 2,000 records, and closes each window once.
    records_per_shard = records_per_s / shards
    agg_invocations_per_shard = max(1.0, records_per_shard / 2000) + 1 / inputs.window_s
    agg_invocations = shards * agg_invocations_per_shard
    cpu_s_per_message = 1 / messages_per_cpu_s
    agg_busy_per_shard = (
        messages_per_s / shards * cpu_s_per_message / vcpu.get("AggregatorFunction", agg_mb / 1769)
        + agg_invocations_per_shard * a["aggregator_ms_per_invocation"] / 1000
    )  # seconds of work per second per shard
    agg_gb_s = shards * agg_busy_per_shard * agg_mb / 1024
    publishes_per_window = float(peak_races)  # one standings message per race per window
    publishes_per_s = peak_races / inputs.window_s + 2 * inputs.races_per_hour / SECONDS_PER_HOUR
    pub_invocations = peak_races / inputs.window_s
    pub_gb_s = pub_invocations * a["publisher_ms_per_publish"] / 1000 * pub_mb / 1024
    api_gb_s = api_origin_rps * a["api_ms_per_request"] / 1000 * api_mb / 1024
    concurrency = (
        shards
        + pub_invocations * a["publisher_ms_per_publish"] / 1000
        + api_origin_rps * a["api_ms_per_request"] / 1000
    )

    # -- IoT: every viewer receives their race's standings once per window
    deliveries_per_s = inputs.viewers / inputs.window_s
    units = math.ceil(tf.standings_bytes / lim["iot_message_metering_bytes"])
    iot_messages_per_s = publishes_per_s + deliveries_per_s

    # -- monthly cost (usage scales with the share of time races run)
    lambda_requests = (agg_invocations + pub_invocations + api_origin_rps) * duty * month_s
    lambda_gb_s = (agg_gb_s + pub_gb_s + api_gb_s) * duty * month_s
    storage_gb = inputs.races_per_hour * hours * (tf.buckets * tf.bucket_bytes * 2 + tf.summary_bytes) / GIB
    cost = {
        "Kinesis": stream_costs[stream_mode],
        "DynamoDB": write_units_per_s * duty * month_s / 1e6 * p["dynamodb_on_demand_write_million"]
        + read_units_per_s * duty * month_s / 1e6 * p["dynamodb_on_demand_read_million"]
        + storage_gb * p["dynamodb_storage_gb_month"],
        "Lambda": lambda_requests / 1e6 * p["lambda_request_million"]
        + lambda_gb_s * p["lambda_gb_second_arm64"],
        # The publisher's publishes and every delivery to a viewer are metered, per started 5 KB.
        "IoT Core": iot_messages_per_s * units * duty * month_s / 1e6 * p["iot_messages_million"]
        + inputs.viewers * duty * hours * 60 / 1e6 * p["iot_connection_minutes_million"],
        "API Gateway": api_origin_rps * duty * month_s / 1e6 * p["api_gateway_rest_million"],
    }
    if inputs.cdn:
        cost["CloudFront"] = api_rps * duty * month_s / 1e4 * p["cloudfront_https_10k"] + api_rps * duty * (
            month_s * a["api_response_bytes"] / GIB * p["cloudfront_gb_out"]
        )
    races_per_month = inputs.races_per_hour * hours

    limits = _limits(
        inputs=inputs,
        lim=lim,
        a=a,
        sf=sf,
        shards=shards,
        bytes_per_s=bytes_per_s,
        agg_busy_per_shard=agg_busy_per_shard,
        wcu_window=wcu_window,
        window_burst=window_burst,
        concurrency=concurrency,
        deliveries_per_s=deliveries_per_s,
        tf=tf,
        api_origin_rps=api_origin_rps,
    )
    binding = binding_limit(limits)
    return Plan(
        inputs=inputs,
        concurrent_races=concurrent,
        peak_races=peak_races,
        messages_per_s=messages_per_s,
        records_per_s=records_per_s,
        bytes_per_s=bytes_per_s,
        bytes_per_message=sf.bytes / inputs.racers,
        shards=shards,
        stream_mode=stream_mode,
        buckets_per_race=tf.buckets,
        item_writes_per_window=writes_per_window,
        item_writes_per_race=writes_per_race,
        wcu_per_window=wcu_window,
        progress_writes_per_s=progress_writes_per_s,
        write_units_per_s=write_units_per_s,
        read_units_per_s=read_units_per_s,
        window_burst_wcu=window_burst,
        aggregator_invocations_per_s=agg_invocations,
        aggregator_gb_s_per_s=agg_gb_s,
        aggregator_concurrency=shards,
        publisher_invocations_per_s=pub_invocations,
        publisher_gb_s_per_s=pub_gb_s,
        api_requests_per_s=api_rps,
        api_gb_s_per_s=api_gb_s,
        lambda_concurrency=concurrency,
        publishes_per_window=publishes_per_window,
        publishes_per_s=publishes_per_s,
        deliveries_per_s=deliveries_per_s,
        standings_message_bytes=tf.standings_bytes,
        monthly_cost=cost,
        cost_per_race=sum(cost.values()) / races_per_month,
        limits=limits,
        binding=binding,
        sources=sources,
    )


def _limits(
    *,
    inputs: PlanInput,
    lim: Mapping[str, float],
    a: Mapping[str, float],
    sf: StreamFigures,
    shards: int,
    bytes_per_s: float,
    agg_busy_per_shard: float,
    wcu_window: int,
    window_burst: float,
    concurrency: float,
    deliveries_per_s: float,
    tf: TableFigures,
    api_origin_rps: float,
) -> list[Limit]:
    """Every limit the plan meets, with the parameter that moves it."""
    racers_per_shard = (
        inputs.racers * max(1, math.ceil(inputs.races_per_hour * inputs.race_s / 3600)) / shards
    )
    packed = stream_figures(inputs.racers, True).bytes / inputs.racers
    split = "fewer --racers per race (a race is one partition key: it cannot spread over shards)"
    return [
        Limit(
            "Kinesis records/s of one race (one shard)",
            sf.records,
            lim["kinesis_shard_records_per_s"],
            "records/s",
            split if inputs.aggregate else f"--aggregate (compressed batches, ~{packed:.0f} B a message)",
        ),
        Limit(
            "Kinesis bytes/s of one race (one shard)",
            sf.bytes,
            lim["kinesis_shard_bytes_per_s"],
            "B/s",
            split if inputs.aggregate else "--aggregate",
        ),
        Limit(
            "Kinesis shards per account",
            shards,
            lim["kinesis_account_shards"],
            "shards",
            "a shard quota increase, or a second region",
        ),
        Limit(
            "Kinesis on-demand stream write throughput",
            bytes_per_s,
            lim["kinesis_on_demand_max_write_bytes_per_s"],
            "B/s",
            "several streams (races sharded by raceId)",
        ),
        Limit(
            "Aggregator keeps up with its shard",
            agg_busy_per_shard,
            1.0,
            "busy s/s",
            "ShardCount (more shards) or the aggregator's MemorySize",
        ),
        Limit(
            "Tumbling-window state per shard",
            racers_per_shard * a["aggregator_window_state_bytes_per_racer"],
            lim["lambda_window_state_bytes"] * 0.75,
            "B",
            "ShardCount (fewer racers per shard)",
            soft=True,
        ),
        Limit(
            "DynamoDB writes/s of one race (one partition key)",
            wcu_window,
            lim["dynamodb_partition_wcu_per_s"],
            "WCU in the window-close second",
            "--window (longer) or BUCKET_SIZE, or split a race's buckets over several keys",
        ),
        Limit(
            "DynamoDB table on-demand writes/s (windows close together)",
            window_burst,
            lim["dynamodb_table_on_demand_wru_per_s"],
            "WRU/s",
            "a table quota increase, or --window",
        ),
        Limit(
            "DynamoDB item size (race summary)",
            tf.summary_bytes,
            lim["dynamodb_item_bytes"],
            "B",
            "BUCKET_SIZE (fewer buckets per summary)",
        ),
        Limit(
            "Lambda concurrency per account",
            concurrency,
            lim["lambda_account_concurrency"],
            "executions",
            "a concurrency quota increase",
        ),
        Limit(
            "IoT deliveries/s per account",
            deliveries_per_s,
            lim["iot_outbound_publishes_per_s"],
            "msgs/s",
            "--window (fewer updates), a quota increase, then a CDN-polled standings file",
        ),
        Limit(
            "IoT connections per account",
            inputs.viewers,
            lim["iot_max_connections"],
            "connections",
            "a quota increase, then viewers poll a CDN-cached standings file instead of MQTT",
        ),
        Limit("IoT message size (standings)", tf.standings_bytes, lim["iot_message_bytes"], "B", "TOP_N"),
        Limit(
            "API Gateway requests/s per account",
            api_origin_rps,
            lim["api_gateway_account_rps"],
            "req/s",
            "--cdn (finished races served from CloudFront)",
        ),
    ]


# -- rendering ------------------------------------------------------------------------------------------


def _n(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def render(plan: Plan, console: Console) -> None:
    """Print capacity, cost and limits as tables."""
    i = plan.inputs
    console.print(
        f"[bold]{i.racers:,} racers per race, {i.races_per_hour:g} races/hour "
        f"({plan.concurrent_races:.2f} at once, peak {plan.peak_races}), {i.viewers:,} viewers, "
        f"{i.window_s} s windows, {'aggregated' if i.aggregate else 'plain'} records, {i.region}[/]"
    )
    cap = Table(title="Capacity at peak", show_header=True)
    cap.add_column("service")
    cap.add_column("figure")
    cap.add_column("value", justify="right")
    rows = [
        ("Kinesis", "messages/s", _n(plan.messages_per_s)),
        ("Kinesis", "records/s", _n(plan.records_per_s)),
        ("Kinesis", "bytes/s (bytes per message)", f"{_n(plan.bytes_per_s)} ({plan.bytes_per_message:.1f})"),
        ("Kinesis", "shards / stream mode", f"{plan.shards:,} / {plan.stream_mode}"),
        ("DynamoDB", "buckets per race", _n(plan.buckets_per_race)),
        ("DynamoDB", "item writes per window per race", _n(plan.item_writes_per_window)),
        ("DynamoDB", "item writes per race (PBs included)", _n(plan.item_writes_per_race)),
        ("DynamoDB", "shard-progress writes/s", _n(plan.progress_writes_per_s)),
        ("DynamoDB", "write units/s (on-demand)", _n(plan.write_units_per_s, 1)),
        ("DynamoDB", "read units/s (on-demand)", _n(plan.read_units_per_s, 1)),
        ("DynamoDB", "window-close burst (WCU)", _n(plan.window_burst_wcu)),
        (
            "Lambda",
            "aggregator invocations/s, GB-s/s",
            f"{plan.aggregator_invocations_per_s:.2f}, {plan.aggregator_gb_s_per_s:.3f}",
        ),
        (
            "Lambda",
            "publisher invocations/s, GB-s/s",
            f"{plan.publisher_invocations_per_s:.2f}, {plan.publisher_gb_s_per_s:.3f}",
        ),
        ("Lambda", "concurrency", _n(plan.lambda_concurrency, 1)),
        ("IoT Core", "publishes per window (all races)", _n(plan.publishes_per_window)),
        ("IoT Core", "publishes/s, deliveries/s", f"{plan.publishes_per_s:.2f}, {_n(plan.deliveries_per_s)}"),
        ("IoT Core", "standings message bytes", _n(plan.standings_message_bytes)),
        ("API", "requests/s", _n(plan.api_requests_per_s, 1)),
    ]
    for row in rows:
        cap.add_row(*row)
    console.print(cap)
    cost = Table(title="Monthly cost (USD)")
    cost.add_column("service")
    cost.add_column("USD/month", justify="right")
    for service, usd in plan.monthly_cost.items():
        cost.add_row(service, _n(usd, 2))
    cost.add_row("[bold]total[/]", f"[bold]{_n(plan.monthly_total, 2)}[/]")
    cost.add_row("per race", _n(plan.cost_per_race, 4))
    console.print(cost)
    limits = Table(title="Limits, most used first")
    limits.add_column("limit")
    limits.add_column("demand / limit", justify="right")
    limits.add_column("used", justify="right")
    limits.add_column("change")
    for lim in sorted(plan.limits, key=lambda x: -x.utilization):
        used = f"{lim.utilization:.0%}"
        style = "red" if lim.utilization > 1 else ("yellow" if lim.utilization > 0.8 else "")
        limits.add_row(
            lim.name,
            f"{_n(lim.demand)} / {_n(lim.limit)} {lim.unit}",
            f"[{style}]{used}[/]" if style else used,
            lim.change,
        )
    console.print(limits)
    b = plan.binding
    verdict = "[red]exceeded[/]" if b.utilization > 1 else "within limits"
    console.print(f"Binding limit: [bold]{b.name}[/] at {b.utilization:.0%} ({verdict}); change: {b.change}")


def scale_table(window_s: int = 5, race_s: int = 300) -> list[tuple[int, int, Plan]]:
    """Plans from 1,000 to 1,000,000 concurrent racers, viewers at 10x and 100x racers."""
    out = []
    for total in (1_000, 10_000, 100_000, 1_000_000):
        per_race = min(total, MAX_RACERS)
        races_at_once = total // per_race
        for ratio in (10, 100):
            inputs = PlanInput(
                racers=per_race,
                races_per_hour=races_at_once * SECONDS_PER_HOUR / race_s,
                viewers=total * ratio,
                window_s=window_s,
                aggregate=True,
                race_s=race_s,
            )
            out.append((total, ratio, make_plan(inputs)))
    return out


SCALE_COLUMNS = ("racers", "viewers", "shards", "WRU/s", "IoT deliveries/s", "USD/month", "binding limit")


def _scale_cells(total: int, ratio: int, plan: Plan) -> tuple[str, ...]:
    b = plan.binding
    return (
        _n(total),
        f"{_n(total * ratio)} ({ratio}x)",
        _n(plan.shards),
        _n(plan.write_units_per_s),
        _n(plan.deliveries_per_s),
        _n(plan.monthly_total),
        f"{b.name} ({b.utilization:.0%})",
    )


def scale_markdown(rows: Sequence[tuple[int, int, Plan]]) -> str:
    """The scaling table as Markdown (docs/scaling.md is generated from it)."""
    lines = ["| " + " | ".join(SCALE_COLUMNS) + " |", "|" + " --- |" * len(SCALE_COLUMNS)]
    lines += ["| " + " | ".join(_scale_cells(t, r, p)) + " |" for t, r, p in rows]
    return "\n".join(lines)


def render_scale_table(rows: Sequence[tuple[int, int, Plan]], console: Console) -> None:
    """The scaling table of docs/scaling.md."""
    table = Table(title="Alleycat at scale (aggregated records, races back to back)")
    for column in SCALE_COLUMNS:
        table.add_column(column, justify="left" if column == "binding limit" else "right")
    for total, ratio, plan in rows:
        table.add_row(*_scale_cells(total, ratio, plan))
    console.print(table)


# -- CLI ---------------------------------------------------------------------------------------------------


def cmd_plan(args: argparse.Namespace) -> int:
    """``alleycat plan``."""
    console = Console()
    if args.table:
        rows = scale_table(args.window)
        if args.json:
            body = [{"racers": t, "viewer_ratio": r} | p.to_json() for t, r, p in rows]
            print(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode())
        elif args.markdown:
            print(scale_markdown(rows))
        else:
            render_scale_table(rows, console)
        return 0
    inputs = PlanInput(
        racers=args.racers,
        races_per_hour=args.races_per_hour,
        viewers=args.viewers,
        window_s=args.window,
        aggregate=args.aggregate,
        region=args.region,
        race_s=args.duration,
        top_n=args.top_n,
        cdn=args.cdn,
        stream_mode=args.stream_mode,
        shard_count=args.shards,
    )
    try:
        plan = make_plan(inputs)
    except ValueError as exc:
        Console(stderr=True).print(f"[red]error:[/] {exc}")
        return 1
    if args.json:
        print(orjson.dumps(plan.to_json(), option=orjson.OPT_INDENT_2).decode())
    else:
        render(plan, console)
    return 0


def add_plan_command(commands: Any) -> None:
    """Register ``alleycat plan`` on the CLI's subparsers."""
    plan = commands.add_parser(
        "plan",
        help="capacity and monthly cost on AWS for a given size",
        description="Capacity (shards, table units, Lambda, IoT, API) and monthly cost by service for "
        "races of --racers, --races-per-hour and --viewers, with the binding limit and what to change. "
        "Per-unit figures are measured from the project's code and bench results; prices and limits "
        "come from alleycat/data/aws_prices.json.",
    )
    plan.add_argument("--racers", type=int_range(1), default=1000, help="racers per race (default 1000)")
    plan.add_argument(
        "--races-per-hour", type=positive_float, default=12.0, help="races started per hour (default 12)"
    )
    plan.add_argument(
        "--viewers", type=int_range(0), default=10_000, help="concurrent viewers (default 10,000)"
    )
    plan.add_argument("--window", type=int_range(1), default=5, help="WindowSeconds (default 5)")
    plan.add_argument(
        "--duration", type=int_range(1), default=300, help="race length in seconds (default 300)"
    )
    plan.add_argument(
        "--top-n", type=int_range(1), default=50, help="racers per standings message (TOP_N, 50)"
    )
    plan.add_argument("--aggregate", action="store_true", help="producers send compressed batches")
    plan.add_argument("--cdn", action="store_true", help="CloudFront in front of the API")
    plan.add_argument("--stream-mode", choices=["PROVISIONED", "ON_DEMAND"], help="default: the cheaper")
    plan.add_argument(
        "--shards", type=int_range(1), help="ShardCount: at least this many shards (default: as needed)"
    )
    plan.add_argument("--region", default="us-east-1", help="price region (default us-east-1)")
    plan.add_argument("--json", action="store_true", help="print JSON")
    plan.add_argument("--table", action="store_true", help="the 1,000 to 1,000,000 racers table")
    plan.add_argument("--markdown", action="store_true", help="with --table: print it as Markdown")
    plan.set_defaults(handler=cmd_plan)


__all__ = [
    "Limit",
    "Plan",
    "PlanInput",
    "PriceBook",
    "add_plan_command",
    "binding_limit",
    "load_prices",
    "make_plan",
    "render",
    "scale_table",
    "stream_figures",
    "table_figures",
]
