"""Every benchmark in one run: prints a table, writes bench/results/latest.json and the plots.

    .venv/bin/python bench/run_all.py [--quick]      # what `make bench` runs

Each figure is measured against a baseline in the same process (alternating, several repetitions,
medians) where one exists; see the docstrings of bench_aggregator.py, bench_producer.py and
bench_live.py for how. ``latest.json`` is a flat object, metric name -> number. BENCHMARKS.md
records a run's figures and the goals they are held against.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

import bench_aggregator  # noqa: E402
import bench_lifo  # noqa: E402
import bench_live  # noqa: E402
import bench_producer  # noqa: E402

RESULTS = BENCH / "results"


@dataclass(frozen=True)
class Goal:
    """A figure's goal: how it reads in the table, and whether a run's figures meet it."""

    metric: str
    text: str
    met: Callable[[dict[str, float]], bool]


def _window(f: dict[str, float]) -> float:
    return f.get("window_s", 5.0)


# The goals the issues set; the table shows each with its value and whether it is met.
GOALS: list[Goal] = [
    Goal("aggregator_vs_raw_ratio", ">= 0.45", lambda f: f["aggregator_vs_raw_ratio"] >= 0.45),
    Goal("racers_per_shard_aggregated", ">= 10,000", lambda f: f["racers_per_shard_aggregated"] >= 10_000),
    Goal("freshness_p50_s", "<= window + 1.5", lambda f: f["freshness_p50_s"] <= _window(f) + 1.5),
    Goal("freshness_p99_s", "<= window + 3 (8 s)", lambda f: f["freshness_p99_s"] <= _window(f) + 3),
    Goal("api_p50_ms", "< 10", lambda f: f["api_p50_ms"] < 10),
    Goal("api_p99_ms", "< 50", lambda f: f["api_p99_ms"] < 50),
    Goal("final_merge_s_10k", "< 5", lambda f: f["final_merge_s_10k"] < 5),
    Goal("final_lag_s_1k", "<= window + 5", lambda f: f["final_lag_s_1k"] <= _window(f) + 5),
    Goal(
        "lifo_newest10_wait_p50_s",
        "< fifo_newest10_wait_p50_s",
        lambda f: f["lifo_newest10_wait_p50_s"] < f["fifo_newest10_wait_p50_s"],
    ),
]


def producer_figures(records: int, repetitions: int) -> dict[str, float]:
    """KinesisProducer (4 in flight, plain and aggregated) vs a plain put_records loop, moto server."""
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    workload = bench_producer.workload(records)
    with bench_producer.local_server(bench_producer.MOTO_SERVER) as endpoint:
        clients = bench_producer.endpoint_clients(endpoint)

        def fresh_stream() -> str:
            name = f"bench-{uuid.uuid4().hex[:8]}"
            clients["plain"].create_stream(StreamName=name, ShardCount=4)
            clients["plain"].get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1})
            return name

        rates = bench_producer.measure(clients, fresh_stream, workload, repetitions)
    plain = statistics.median(rates["plain boto3 loop"])
    producer = statistics.median(rates["producer, 4 in flight"])
    aggregated = statistics.median(rates["producer, 4 in flight, aggregated"])
    ratios = [p / b for p, b in zip(rates["producer, 4 in flight"], rates["plain boto3 loop"], strict=True)]
    return {
        "producer_records_per_s": producer,
        "plain_put_records_per_s": plain,
        "producer_vs_plain_ratio": statistics.median(ratios),
        "producer_aggregated_records_per_s": aggregated,
    }


def machine() -> dict[str, float]:
    """nproc and RAM, as numbers for the JSON (the Python version is printed)."""
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return {"machine_nproc": float(os.cpu_count() or 0), "machine_ram_gib": round(pages / 2**30, 1)}


def plot(series: dict[str, Any], figures: dict[str, float]) -> list[Path]:
    """Capacity probes' iterator age over time, and the freshness distribution."""
    import matplotlib  # noqa: PLC0415 - only needed here

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    written: list[Path] = []
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), sharey=True)
    for ax, aggregated in zip(axes, (False, True), strict=True):
        probes = sorted(
            (p for p in series["probes"] if p["aggregated"] == aggregated), key=lambda p: p["racers"]
        )
        for p in probes:
            points = p["iterator_age_s"] or [(0.0, 0.0)]
            style = "-" if p["passed"] else "--"
            label = f"{p['racers']:,} racers: " + ("sustained" if p["passed"] else p["reason"])
            ax.plot([t for t, _ in points], [a for _, a in points], style, marker=".", label=label)
        ax.axhline(bench_live.CAUGHT_UP_AGE_S, color="grey", lw=0.8, ls=":")
        kind = "KPL-aggregated, compressed batches" if aggregated else "plain JSON records"
        ax.set_title(f"One shard, {kind}")
        ax.set_xlabel("seconds into the probe (1 Hz racers)")
        ax.legend(fontsize=7, loc="upper left")
    axes[0].set_ylabel("aggregator iterator age (s)")
    fig.suptitle("Racers per shard under localcloud's shard limits: iterator age while racing")
    fig.tight_layout()
    path = RESULTS / "racers_per_shard.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)

    latencies = series["freshness_latencies_s"]
    window = figures["window_s"]
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.hist(latencies, bins=60, color="#4c72b0")
    for value, text, color in (
        (figures["freshness_p50_s"], "p50", "black"),
        (figures["freshness_p99_s"], "p99", "black"),
        (window + 1.5, "goal p50", "green"),
        (window + 3, "goal p99", "red"),
    ):
        ax.axvline(value, color=color, ls="--" if text.startswith("goal") else "-", lw=1)
        ax.text(value, ax.get_ylim()[1] * 0.95, f" {text}", color=color, fontsize=8, va="top")
    ax.set_xlabel("seconds from a racer's message (deviceTimestamp) to the MQTT update holding it")
    ax.set_ylabel("messages")
    ax.set_title(f"Freshness: 1,000 racers, {window:.0f}-second windows, local stack")
    fig.tight_layout()
    path = RESULTS / "freshness.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)
    return written


def _optional(module: str) -> Any:
    """A benchmark module, imported by name when its section runs (one module's import error
    costs only its own figures)."""
    return importlib.import_module(module)


def goal_rows(figures: dict[str, float]) -> list[tuple[str, str, str, str]]:
    """(metric, value, goal, verdict) for every goal; a figure the run lacks is "not measured"."""
    rows = []
    for goal in GOALS:
        if goal.metric not in figures:
            rows.append((goal.metric, "-", goal.text, "not measured"))
            continue
        try:
            verdict = "met" if goal.met(figures) else "NOT met"
        except KeyError as missing:  # the goal compares with a figure this run lacks
            verdict = f"not measured ({missing.args[0]})"
        rows.append((goal.metric, f"{figures[goal.metric]:,.2f}", goal.text, verdict))
    return rows


def main() -> None:
    """Run everything, print the table, write the results."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and bisection steps")
    parser.add_argument(
        "--only",
        action="append",
        metavar="SECTION",
        help="run only this section (repeatable): aggregator, producer, live, finish, api, kcl, plan, lifo",
    )
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    started = time.monotonic()
    figures: dict[str, float] = {"load_avg_1m_start": round(os.getloadavg()[0], 2)}
    series: dict[str, Any] = {}
    failed: list[str] = []

    def log(line: str) -> None:
        print(f"[{time.monotonic() - started:6.1f} s] {line}", flush=True)

    def live() -> dict[str, float]:
        measured, more = bench_live.run(args.quick, log)
        series.update(more)
        return measured

    sections: list[tuple[str, str, Callable[[], dict[str, float]]]] = [
        ("aggregator", "aggregator: core vs raw decode, writes per race, memory",
         lambda: bench_aggregator.run(repetitions=5 if args.quick else 9)),
        ("producer", "producer: KinesisProducer vs a plain put_records loop (moto server)",
         lambda: producer_figures(records=10_000, repetitions=3 if args.quick else 5)),
        ("live", "local stack: racers per shard, freshness calm and under load", live),
        ("finish", "finish line: the final merge of 10,000 racers, last message to final",
         lambda: _optional("bench_finish").run(args.quick)),
        ("api", "API latency: locust in its own process, 8 users, a finished 10,000-racer race",
         lambda: _optional("bench_api").run(args.quick, log)),
        ("kcl", "KCL consumer vs the Lambda path: records/s on one shard, time to final",
         lambda: _optional("bench_kcl").run(args.quick, log)),
        ("plan", "capacity planner: predictions vs localcloud's CloudWatch metrics",
         lambda: _optional("bench_plan").run(args.quick, log)),
        ("lifo", "LIFO task queue vs a FIFO baseline, 5x overload, same run",
         lambda: bench_lifo.run(seconds=20 if args.quick else 60)),
    ]  # fmt: skip
    for name, title, measure in sections:
        if args.only and name not in args.only:
            continue
        log(f"{title} ...")
        try:
            figures.update(measure())
        except Exception as exc:
            failed.append(name)
            log(f"{name}: FAILED: {type(exc).__name__}: {exc}")
    figures.update(machine())
    figures["load_avg_1m_end"] = round(os.getloadavg()[0], 2)
    figures["bench_seconds"] = round(time.monotonic() - started, 1)

    latest = RESULTS / "latest.json"
    if args.only and latest.exists():
        # A partial run updates its figures and keeps the others of the last full run.
        figures = {**orjson.loads(latest.read_bytes()), **figures}
    latest.write_bytes(orjson.dumps(figures, option=orjson.OPT_INDENT_2))
    plots = plot(series, figures) if "probes" in series else []

    print(f"\nPython {platform.python_version()}, {figures['machine_nproc']:.0f} CPUs, "
          f"{figures['machine_ram_gib']} GiB RAM, load average {figures['load_avg_1m_start']} at the start, "
          f"{figures['load_avg_1m_end']} at the end")  # fmt: skip
    width = max(map(len, figures))
    for name, value in figures.items():
        print(f"{name:<{width}}  {value:>14,.2f}")
    print("\ngoals:")
    for metric, value, text, verdict in goal_rows(figures):
        print(f"  {metric:<{width}}  {value:>12}  {text:<28}  {verdict}")
    print(f"\nwrote {latest}" + "".join(f", {p}" for p in plots))
    if failed:
        sys.exit(f"sections that failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
