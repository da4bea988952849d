"""Simulator: deterministic messages in the Alleycat format, believable effort, pacing, CLI."""

from __future__ import annotations

import itertools
import shlex
import statistics
import subprocess
import sys
from collections import Counter
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from producers import FailedRecord, ProducerStats, PutResult
from simulator import (
    CADENCE_MAX,
    CADENCE_MIN,
    RESISTANCE_MAX,
    RESISTANCE_MIN,
    RaceRunner,
    RaceSpec,
    RunnerStats,
    all_race_messages,
    derive_race_id_base,
    generate_race_messages,
    plan_races,
)
from simulator.cli import _max_in_flight
from simulator.cli import main as cli_main
from simulator.progress import render_stats

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTRACT_KEYS = [
    "event",
    "deviceTimestamp",
    "second",
    "raceId",
    "name",
    "racerId",
    "classId",
    "cadence",
    "resistance",
]


def spec(**overrides) -> RaceSpec:
    values = {"race_id": 5400802, "class_id": 3, "racers": 20, "duration": 30, "seed": 11}
    values.update(overrides)
    return RaceSpec(start_epoch_ms=1_700_000_000_000, **values)


# -- messages ------------------------------------------------------------------------------------


def test_same_seed_gives_identical_messages():
    assert all_race_messages(spec()) == all_race_messages(spec())


def test_different_seed_or_class_gives_different_rides():
    base = all_race_messages(spec())
    assert all_race_messages(spec(seed=12)) != base
    other_class = all_race_messages(spec(class_id=4))
    assert [(m["cadence"], m["resistance"]) for m in other_class] != [
        (m["cadence"], m["resistance"]) for m in base
    ]


def test_messages_follow_the_contract():
    race = spec(racers=7, duration=12)
    seconds = list(generate_race_messages(race))
    assert len(seconds) == 12
    for second, messages in enumerate(seconds, start=1):
        assert [m["racerId"] for m in messages] == list(range(1, 8))  # dense ids, one message each
        for m in messages:
            assert list(m) == CONTRACT_KEYS
            assert m["second"] == second
            assert m["raceId"] == 5400802 and m["classId"] == 3
            assert m["event"] == ("final" if second == 12 else "update")
            assert isinstance(m["name"], str) and m["name"]
            assert (
                1_700_000_000_000 + (second - 1) * 1000
                <= m["deviceTimestamp"]
                < 1_700_000_000_000 + second * 1000
            )


def test_a_racer_keeps_name_and_advancing_timestamps():
    messages = [m for m in all_race_messages(spec(racers=5)) if m["racerId"] == 4]
    assert len({m["name"] for m in messages}) == 1
    stamps = [m["deviceTimestamp"] for m in messages]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)


def test_final_only_on_the_last_second_even_for_one_second_races():
    messages = all_race_messages(spec(duration=1, racers=3))
    assert [m["event"] for m in messages] == ["final"] * 3


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(min_value=-(2**63), max_value=2**63 - 1),
    racers=st.integers(min_value=1, max_value=40),
    duration=st.integers(min_value=1, max_value=120),
)
def test_cadence_and_resistance_stay_integer_and_in_range(seed: int, racers: int, duration: int):
    for m in all_race_messages(spec(seed=seed, racers=racers, duration=duration)):
        assert type(m["cadence"]) is int and CADENCE_MIN <= m["cadence"] <= CADENCE_MAX
        assert type(m["resistance"]) is int and RESISTANCE_MIN <= m["resistance"] <= RESISTANCE_MAX


def test_effort_is_believable_varied_smooth_with_a_final_sprint():
    race = spec(racers=200, duration=300)
    messages = all_race_messages(race)
    by_second: dict[int, list[dict]] = {}
    for m in messages:
        by_second.setdefault(m["second"], []).append(m)

    def mean_output(first: int, last: int) -> float:
        return statistics.mean(
            (m["cadence"] + 35) * (m["resistance"] + 65) / 100
            for s in range(first, last + 1)
            for m in by_second[s]
        )

    # Racers differ: per-racer mean cadence spreads over a realistic range
    per_racer = [statistics.mean(m["cadence"] for m in messages if m["racerId"] == r) for r in range(1, 201)]
    assert statistics.pstdev(per_racer) > 4
    # Fatigue: the field slows between the first third and the last third before the sprint
    assert mean_output(30, 90) > mean_output(200, 250)
    # Sprint: the last seconds beat the minute before
    assert mean_output(295, 300) > mean_output(230, 260) * 1.03
    # Smooth: second-to-second cadence changes are small on average (not white noise)
    steps = []
    for r in range(1, 201):
        cadences = [m["cadence"] for m in messages if m["racerId"] == r]
        steps += [abs(b - a) for a, b in itertools.pairwise(cadences)]
    assert statistics.mean(steps) < 3.0
    assert statistics.mean(steps) > 0.3  # but alive


@pytest.mark.parametrize("racers", [0, 10_001, -5])
def test_racers_out_of_range_are_rejected(racers: int):
    with pytest.raises(ValueError, match="racers"):
        spec(racers=racers)


def test_ten_thousand_racers_are_allowed():
    first_second = next(generate_race_messages(spec(racers=10_000, duration=2)))
    assert [m["racerId"] for m in first_second] == list(range(1, 10_001))


# -- raceIds ---------------------------------------------------------------------------------------


def test_each_class_gets_its_own_unique_race_id():
    races = plan_races([1, 2, 3], racers=5, duration=10, seed=4, start_epoch_ms=1_700_000_000_000)
    assert [r.class_id for r in races] == [1, 2, 3]
    assert len({r.race_id for r in races}) == 3
    again = plan_races([1, 2, 3], racers=5, duration=10, seed=4, start_epoch_ms=1_700_000_000_000)
    assert [r.race_id for r in again] == [r.race_id for r in races]  # deterministic


def test_race_ids_depend_on_seed_and_start_time_unless_a_base_is_given():
    t = 1_700_000_000_000
    assert derive_race_id_base(1, t) != derive_race_id_base(2, t)
    assert derive_race_id_base(1, t) != derive_race_id_base(1, t + 60_000)
    assert 0 < derive_race_id_base(1, t) < 2**53
    races = plan_races([7, 8], racers=1, race_id_base=5400800)
    assert [r.race_id for r in races] == [5400800, 5400801]


def test_many_classes_never_collide():
    for seed in range(50):
        races = plan_races(list(range(100)), racers=1, seed=seed, start_epoch_ms=seed * 1000)
        assert len({r.race_id for r in races}) == 100


def test_duplicate_classes_are_rejected():
    with pytest.raises(ValueError, match="distinct"):
        plan_races([1, 1], racers=3)


# -- runner ---------------------------------------------------------------------------------------


class ListSink:
    def __init__(self, fail_every: int = 0) -> None:
        self.records: list[tuple[str, dict]] = []
        self.fail_every = fail_every
        self._failed: list[FailedRecord] = []
        self._total_failed = 0

    def put(self, data, partition_key) -> None:
        self.records.append((str(partition_key), orjson.loads(data)))
        if self.fail_every and len(self.records) % self.fail_every == 0:
            self._failed.append(FailedRecord(str(partition_key), data, "InternalFailure", "test", 3))
            self._total_failed += 1

    def stats(self) -> ProducerStats:
        return ProducerStats(sent=len(self.records) - self._total_failed, failed=self._total_failed)

    def take_failures(self) -> list[FailedRecord]:
        failed, self._failed = self._failed, []
        return failed

    def flush(self) -> PutResult:
        return PutResult(tuple(self.take_failures()))


class FakeClock:
    def __init__(self) -> None:
        self.now = 50.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_runner_sends_exactly_the_generated_messages_keyed_by_race_id():
    races = plan_races([1, 2], racers=4, duration=6, seed=9, start_epoch_ms=1_700_000_000_000)
    sink = ListSink()
    summary = RaceRunner(races, sink, realtime=False).run()
    expected = [
        (str(r.race_id), m)
        for second in range(6)
        for r in races
        for m in list(generate_race_messages(r))[second]
    ]
    assert sink.records == expected
    assert summary.race_ids == tuple(r.race_id for r in races)
    assert (summary.messages_generated, summary.sent, summary.failed) == (48, 48, 0)


def test_runner_paces_by_the_monotonic_clock_and_speed():
    fake = FakeClock()
    races = plan_races([1], racers=2, duration=5, seed=1)
    RaceRunner(races, ListSink(), speed=10, clock=fake.clock, sleep=fake.sleep).run()
    # Second 1 goes at once; each next second 0.1 wall seconds after the previous one
    assert fake.sleeps == pytest.approx([0.1, 0.1, 0.1, 0.1])


def test_runner_does_not_sleep_when_behind():
    fake = FakeClock()

    class SlowSink(ListSink):
        def put(self, data, partition_key) -> None:
            fake.now += 0.01  # each message takes 10 ms: one second of 200 messages takes 2 s
            super().put(data, partition_key)

    RaceRunner(plan_races([1], racers=200, duration=3), SlowSink(), clock=fake.clock, sleep=fake.sleep).run()
    assert fake.sleeps == []


def test_runner_reports_progress_and_failures_by_code():
    seen: list[RunnerStats] = []
    sink = ListSink(fail_every=10)
    summary = RaceRunner(
        plan_races([1], racers=10, duration=4), sink, realtime=False, progress=seen.append
    ).run()
    assert [s.race_second for s in seen] == [1, 2, 3, 4, 4]
    assert [s.finished for s in seen] == [False] * 4 + [True]
    assert seen[-1].messages_generated == seen[-1].messages_total == 40
    assert summary.failed == 4 and summary.failures_by_code == {"InternalFailure": 4}
    assert len(summary.failed_records) == 4
    assert summary.to_dict()["failuresByCode"] == {"InternalFailure": 4}


def test_runner_stop_ends_the_run_early():
    races = plan_races([1], racers=1, duration=100)
    sink = ListSink()
    runner = RaceRunner(races, sink, realtime=False)
    runner_progress: list[int] = []

    def progress(stats: RunnerStats) -> None:
        runner_progress.append(stats.race_second)
        if stats.race_second == 3:
            runner.stop()

    runner._progress = progress
    summary = runner.run()
    assert summary.seconds_played == 3 and summary.stopped_early
    assert len(sink.records) == 3


# -- command line ---------------------------------------------------------------------------------


def run_cli(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "simulator", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        timeout=60,
        check=False,
    )


def test_dry_run_writes_json_lines_that_match_the_generator():
    result = run_cli(
        "--racers", "6", "--classes", "1,2", "--duration", "4", "--seed", "3",
        "--race-id-base", "900", "--start-time", "1700000000000", "--dry-run", "--quiet",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    lines = result.stdout.decode().splitlines()
    messages = [orjson.loads(line) for line in lines]
    assert len(messages) == 6 * 2 * 4
    races = plan_races(
        [1, 2], racers=6, duration=4, seed=3, start_epoch_ms=1_700_000_000_000, race_id_base=900
    )
    assert sorted(messages, key=orjson.dumps) == sorted(
        (m for r in races for m in all_race_messages(r)), key=orjson.dumps
    )
    assert Counter(m["raceId"] for m in messages) == {900: 24, 901: 24}


def test_cli_json_summary_lists_race_ids(capsysbinary):
    code = cli_main(
        ["--racers", "2", "--classes", "4,5", "--duration", "2", "--dry-run", "--quiet", "--json-summary"]
    )
    assert code == 0
    captured = capsysbinary.readouterr()
    summary = orjson.loads(captured.err.decode().strip().splitlines()[-1])
    assert len(summary["raceIds"]) == 2 and summary["sent"] == 8 and summary["failed"] == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--racers", "0"], "racers must be in 1..10000"),
        (["--racers", "10001"], "racers must be in 1..10000"),
        (["--racers", "ten"], "racers must be an integer"),
        (["--classes", "1,x"], "classes must be comma-separated integers"),
        (["--classes", "2,2"], "distinct"),
        (["--duration", "0"], "duration must be in"),
        (["--speed", "0"], "speed must be > 0"),
        (["--local-config", "/nonexistent/local.json"], "--stream-name is required"),
    ],
)
def test_bad_arguments_exit_2_with_a_clear_message(args: list[str], message: str, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli_main(args)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_help_documents_the_options():
    result = run_cli("--help")
    assert result.returncode == 0
    out = result.stdout.decode()
    for option in ["--racers", "--classes", "--duration", "--seed", "--stream-name", "--endpoint-url",
                   "--region", "--aggregate", "--dry-run", "--speed"]:  # fmt: skip
        assert option in out


def test_progress_panel_shows_clock_counts_and_failures():
    stats = RunnerStats(
        race_second=75,
        duration=300,
        races=2,
        messages_generated=1500,
        messages_total=6000,
        sent=1490,
        failed=10,
        retried=42,
        elapsed_seconds=7.5,
        messages_per_second=198.7,
        failures_by_code={"ProvisionedThroughputExceededException": 10},
    )
    console = Console(record=True, width=120)
    console.print(render_stats(stats))
    text = console.export_text()
    for expected in [
        "01:15 / 05:00",
        "1,500 / 6,000",
        "1,490",
        "199",
        "42",
        "ProvisionedThroughputExceededException: 10",
    ]:
        assert expected in text


@pytest.mark.parametrize(
    ("requested", "endpoint", "expected"),
    [
        (None, "http://127.0.0.1:4566", 1),
        (None, "http://localhost:5000", 1),
        (None, "https://kinesis.us-east-1.amazonaws.com", 4),
        (None, None, 4),
        (8, "http://127.0.0.1:4566", 8),
    ],
)
def test_loopback_endpoints_default_to_one_request_in_flight(requested, endpoint, expected):
    assert _max_in_flight(requested, endpoint) == expected


def test_the_help_examples_local_command_finds_the_stream_alleycat_up_created(tmp_path: Path) -> None:
    from simulator.cli import EPILOG, _stream_settings, build_parser  # noqa: PLC0415

    # The example under the comment naming the local stack, continuation lines joined.
    example = next(block for block in EPILOG.split("\n\n") if "local stack started by" in block)
    command = " ".join(
        line.strip()
        for line in example.splitlines()
        if line.startswith("  ") and not line.strip().startswith("#")
    )
    argv = shlex.split(command.replace("\\", " "))
    assert argv[:3] == ["python", "-m", "simulator"]
    argv = argv[3:]
    assert "--stream-name" not in argv, "the local stream's name is CloudFormation's, not a fixed one"
    config = tmp_path / "local.json"
    config.write_text(
        orjson.dumps(
            {
                "endpoint_url": "http://127.0.0.1:50123",
                "region": "us-east-1",
                "stacks": {"alleycat": {"outputs": {"StreamName": "alleycat-RaceStream-AB12CD34"}}},
            }
        ).decode()
    )
    parser = build_parser()
    args = parser.parse_args([*argv, "--local-config", str(config)])
    settings = _stream_settings(args, parser)
    assert settings == {
        "stream_name": "alleycat-RaceStream-AB12CD34",
        "endpoint_url": "http://127.0.0.1:50123",
        "region": "us-east-1",
    }
