"""The planner's arithmetic, checked by hand, and its binding-limit logic."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from importlib import resources

import pytest

from alleycat.cli import main
from alleycat.plan import (
    Limit,
    Plan,
    PlanInput,
    PriceBook,
    binding_limit,
    function_memory_mb,
    load_prices,
    make_plan,
    stream_figures,
    table_figures,
)
from alleycat.plan_validation import (
    WINDOW_S,
    Measured,
    SizeResult,
    ValidationSize,
    _hash_key,
    compare,
    race_ids_on_shards,
    ratios,
)
from alleycat.plan_validation import plan_for as plan_for_size

MEMORY = {"AggregatorFunction": 1769, "PublisherFunction": 512, "ApiFunction": 512}


def only(prices: PriceBook, **keep: float) -> PriceBook:
    """The price book with every price zero except ``keep``."""
    return replace(prices, prices={name: keep.get(name, 0.0) for name in prices.prices})


def plan_for(inputs: PlanInput, prices: PriceBook | None = None, **assumptions: float) -> Plan:
    """A plan with fixed bench and memory figures, so hand checks do not depend on the machine."""
    book = prices or load_prices()
    if assumptions:
        book = replace(book, assumptions={**book.assumptions, **assumptions})
    return make_plan(inputs, book, messages_per_cpu_s=100_000.0, memory_mb=MEMORY)


# -- table: writes per window and per race from the bucket layout ---------------------------------------


@pytest.mark.parametrize(("racers", "buckets"), [(1, 1), (99, 1), (100, 2), (1000, 11), (10_000, 101)])
def test_buckets_follow_the_domain_layout(racers: int, buckets: int) -> None:
    # Racer ids are 1..racers and a bucket holds ids b*100 .. b*100+99.
    assert table_figures(racers, 300, 50).buckets == buckets


def test_writes_per_race_match_the_benchmark_by_hand() -> None:
    # 300 s / 5 s = 60 windows x (11 buckets + 1 summary) + 1,000 personal bests = 1,720, the figure
    # bench/bench_aggregator.py measured (ddb_writes_per_race).
    plan = plan_for(PlanInput(racers=1000, races_per_hour=12, viewers=0))
    assert plan.item_writes_per_window == 12
    assert plan.item_writes_per_race == 60 * 12 + 1000 == 1720


def test_window_length_divides_the_writes() -> None:
    plan = plan_for(PlanInput(racers=1000, races_per_hour=12, viewers=0, window_s=30))
    assert plan.item_writes_per_race == 10 * 12 + 1000


def test_each_shard_carrying_a_race_writes_its_progress_once_a_second() -> None:
    # Window writes spread over the window, personal bests over the race, and the aggregator's
    # shard-progress item: one write a second per shard that carries a race.
    one = plan_for(PlanInput(racers=1000, races_per_hour=12, viewers=0))
    assert one.progress_writes_per_s == 1
    assert one.write_units_per_s == pytest.approx(one.wcu_per_window / 5 + 1000 / 300 + 1)
    # Two races at once on a four-shard stream: only the two shards carrying them write progress.
    two = plan_for(PlanInput(racers=1000, races_per_hour=24, viewers=0, shard_count=4))
    assert two.shards == 4
    assert two.progress_writes_per_s == 2


# -- stream: records, bytes and shards ---------------------------------------------------------------------


def test_plain_records_are_one_per_message_and_races_overlap() -> None:
    # 36 races an hour of 300 s: 3 run at once, 3,000 records/s, 3 shards.
    plan = plan_for(PlanInput(racers=1000, races_per_hour=36, viewers=0))
    assert plan.concurrent_races == pytest.approx(3.0)
    assert plan.peak_races == 3
    assert plan.records_per_s == 3000
    assert plan.shards == 3
    assert plan.bytes_per_s == pytest.approx(3 * stream_figures(1000, False).bytes)


def test_measured_message_sizes_are_in_the_benchmarked_range() -> None:
    plain = stream_figures(1000, False)
    packed = stream_figures(1000, True)
    # BENCHMARKS.md: ~160 B as JSON, ~12 B a message compressed; a partition key of 10 digits.
    assert 120 < plain.bytes / 1000 < 200
    assert 8 < packed.bytes / 1000 < 20
    assert packed.records < 10  # a few 51,200-byte batches per race-second


def test_shard_count_is_a_floor_never_a_ceiling() -> None:
    # ShardCount=2 for one plain race: two shards (the second idles); for three races: three.
    assert plan_for(PlanInput(racers=1000, races_per_hour=12, viewers=0, shard_count=2)).shards == 2
    assert plan_for(PlanInput(racers=1000, races_per_hour=36, viewers=0, shard_count=2)).shards == 3


def test_aggregated_shards_are_set_by_bytes() -> None:
    plan = plan_for(PlanInput(racers=10_000, races_per_hour=1200, viewers=0, aggregate=True))
    assert plan.peak_races == 100
    assert plan.shards == math.ceil(plan.bytes_per_s / 1_048_576)


# -- cost arithmetic ----------------------------------------------------------------------------------------


def test_provisioned_stream_cost_by_hand() -> None:
    # One shard for 730 h at $0.015 = $10.95; 1,000 plain records/s of <25 KB are one PUT payload unit
    # each: 1,000 x 3,600 x 730 = 2,628 million units at $0.014 = $36.792.
    prices = only(load_prices(), kinesis_shard_hour=0.015, kinesis_put_payload_unit_million=0.014)
    plan = plan_for(PlanInput(racers=1000, races_per_hour=12, viewers=0, stream_mode="PROVISIONED"), prices)
    assert plan.monthly_cost["Kinesis"] == pytest.approx(10.95 + 36.792)


def test_half_busy_month_halves_usage_but_not_shard_hours() -> None:
    # 6 races an hour of 300 s: the stream is busy half the time; shard-hours are paid all the time.
    prices = only(load_prices(), kinesis_shard_hour=0.015, kinesis_put_payload_unit_million=0.014)
    plan = plan_for(PlanInput(racers=1000, races_per_hour=6, viewers=0, stream_mode="PROVISIONED"), prices)
    assert plan.peak_races == 1
    assert plan.monthly_cost["Kinesis"] == pytest.approx(10.95 + 36.792 / 2)


def test_iot_messages_by_hand() -> None:
    # 1,000 viewers, 5 s windows: 200 deliveries/s; the publisher sends 1/5 standings per second plus
    # 2 announcements per race (12 races/h). A standings message of 50 racers is under 5 KB: 1 unit.
    prices = only(load_prices(), iot_messages_million=1.0)
    plan = plan_for(PlanInput(racers=1000, races_per_hour=12, viewers=1000), prices)
    assert plan.standings_message_bytes <= 5120
    per_s = 200 + 0.2 + 2 * 12 / 3600
    assert plan.deliveries_per_s == 200
    assert plan.monthly_cost["IoT Core"] == pytest.approx(per_s * 730 * 3600 / 1e6)


def test_aggregator_gb_seconds_from_the_benchmark_figure() -> None:
    # 1,000 messages/s at 100,000 messages per CPU-second: 0.01 CPU-s/s; at 1,769 MB (one vCPU) that
    # is 0.01 s/s of duration, times 1,769/1,024 GB.
    plan = plan_for(PlanInput(racers=1000, races_per_hour=12, viewers=0), aggregator_ms_per_invocation=0)
    assert plan.aggregator_gb_s_per_s == pytest.approx(0.01 * 1769 / 1024)


def test_cdn_takes_the_hit_ratio_off_the_api() -> None:
    base = plan_for(PlanInput(racers=1000, races_per_hour=12, viewers=100_000))
    cdn_input = PlanInput(racers=1000, races_per_hour=12, viewers=100_000, cdn=True)
    cdn = plan_for(cdn_input, api_cdn_hit_ratio=0.9)
    assert base.api_requests_per_s == pytest.approx(100_000 * 3 / 300)
    api = {lim.name: lim for lim in cdn.limits}["API Gateway requests/s per account"]
    assert api.demand == pytest.approx(base.api_requests_per_s * 0.1)
    assert cdn.monthly_cost["API Gateway"] == pytest.approx(base.monthly_cost["API Gateway"] * 0.1)


# -- binding limit ------------------------------------------------------------------------------


def test_binding_limit_is_the_most_used_hard_limit() -> None:
    limits = [
        Limit("a", 50, 100, "x", "change a"),
        Limit("b", 90, 100, "x", "change b"),
        Limit("soft", 500, 100, "x", "change soft", soft=True),
    ]
    assert binding_limit(limits).name == "b"


def test_a_plain_race_over_1000_racers_is_bound_by_its_shard() -> None:
    plan = plan_for(PlanInput(racers=2000, races_per_hour=12, viewers=100))
    assert plan.binding.name == "Kinesis records/s of one race (one shard)"
    assert plan.binding.utilization == pytest.approx(2.0)
    assert "--aggregate" in plan.binding.change


def test_aggregating_moves_the_binding_limit_off_the_shard() -> None:
    plan = plan_for(PlanInput(racers=2000, races_per_hour=12, viewers=100, aggregate=True))
    assert "Kinesis records/s" not in plan.binding.name
    assert plan.binding.utilization < 1


def test_many_viewers_are_bound_by_iot_fan_out() -> None:
    plan = plan_for(PlanInput(racers=1000, races_per_hour=12, viewers=1_000_000, aggregate=True))
    assert plan.binding.name == "IoT deliveries/s per account"
    assert plan.binding.utilization == pytest.approx(1_000_000 / 5 / 20_000)


# -- data ---------------------------------------------------------------------------------------


def test_every_figure_in_the_data_file_has_a_source_and_a_date() -> None:
    data = json.loads(resources.files("alleycat").joinpath("data/aws_prices.json").read_text())
    for group in ("prices", "limits"):
        for name, figure in data["regions"]["us-east-1"][group].items():
            assert figure["source"].startswith("http"), name
            assert figure["read"] == "2026-12-02", name
            assert isinstance(figure["verified"], bool), name
            assert figure["verified"] or figure.get("note"), f"{name}: unverified figures say why"


def test_unknown_region_is_refused() -> None:
    with pytest.raises(ValueError, match="no prices for region"):
        load_prices("mars-north-1")


def test_memory_sizes_come_from_the_template() -> None:
    memory = function_memory_mb()
    assert memory["AggregatorFunction"] == 1024
    assert memory["PublisherFunction"] == 512  # the Globals value


def test_cli_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--racers", "500", "--races-per-hour", "12", "--viewers", "10", "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["records_per_s"] == 500
    assert body["binding"]["name"]
    assert body["monthly_total"] > 0


def test_cli_takes_the_shard_count(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["plan", "--racers", "500", "--races-per-hour", "12", "--viewers", "0", "--shards", "3"]
    assert main([*args, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["shards"] == 3
    with pytest.raises(SystemExit):
        main([*args[:-1], "0"])


# -- the validation's arithmetic (the run itself: tests/integration/test_plan_validation.py) ----------


def test_validation_race_ids_land_on_the_shards_asked_for() -> None:
    half = 2**127
    shards = {
        "Shards": [
            {"HashKeyRange": {"StartingHashKey": "0", "EndingHashKey": str(half - 1)}},
            {"HashKeyRange": {"StartingHashKey": str(half), "EndingHashKey": str(2**128 - 1)}},
        ]
    }

    class Kinesis:
        def list_shards(self, **_: str) -> dict[str, object]:
            return shards

    ids = race_ids_on_shards(Kinesis(), "s", 2, 5_000_000_000)
    assert [_hash_key(str(i)) < half for i in ids] == [True, False]
    with pytest.raises(ValueError, match="3 are needed"):
        race_ids_on_shards(Kinesis(), "s", 3, 5_000_000_000)


def test_validation_flags_a_figure_outside_its_tolerance() -> None:
    size = ValidationSize(1000, 1, aggregate=False)
    plan = plan_for_size(size)
    windows = math.ceil(size.race_s / WINDOW_S)
    progress = WINDOW_S * plan.progress_writes_per_s  # per window
    exact = Measured(
        records=plan.records_per_s * size.race_s,
        bytes=plan.bytes_per_s * size.race_s,
        item_writes=windows * (plan.item_writes_per_window + progress),
        write_units=windows * (plan.wcu_per_window + progress),
        publishes=windows,
        race_windows=windows,
        throttled=0,
        failed=0,
        lateness_s=0,
        windows=windows,
        elapsed_s=0,
    )
    assert all(f.ok and f.ratio == pytest.approx(1) for f in compare(size, plan, exact))
    # 5 % more bytes than planned is outside plain records' 3 %; so is a window's writes twice over.
    off = replace(exact, bytes=exact.bytes * 1.05, item_writes=exact.item_writes * 2)
    assert {f.name for f in compare(size, plan, off) if not f.ok} == {
        "bytes_per_s",
        "item_writes_per_window",
        "write_units_per_item",
    }
    # A late second: one window more, every figure per window of the run.
    late = replace(exact, windows=windows + 1, race_windows=windows + 1, item_writes=exact.item_writes * 1.2)
    assert all(f.ok for f in compare(size, plan, late))
    # More than a window behind: per-window figures are reported, not held; the others still are.
    behind = replace(off, lateness_s=WINDOW_S + 1.0)
    assert {f.name for f in compare(size, plan, behind) if not f.held} == {
        "item_writes_per_window",
        "race_windows_per_window",
        "publishes_per_window",
    }
    failing = {f.name for f in compare(size, plan, behind) if not f.ok}
    assert failing == {"bytes_per_s", "write_units_per_item"}
    assert ratios([SizeResult(size, plan, exact, compare(size, plan, exact))])[
        "plan_writes_ratio_1k_1shard"
    ] == pytest.approx(1)
