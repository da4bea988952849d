"""Every benchmark in one run: prints a table, writes bench/results/latest.json and the plots.

    .venv/bin/python bench/run_all.py [--quick]      # what `make bench` runs

Each figure is measured against a baseline in the same process (alternating, several repetitions,
medians) where one exists; see the docstrings of bench_aggregator.py, bench_producer.py and
bench_live.py for how. ``latest.json`` is a flat object, metric name -> number. BENCHMARKS.md
records a run's figures and the goals they are held against.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import uuid
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

# (metric, goal as text, check) — the table shows whether each goal is met.
GOALS: list[tuple[str, str]] = [
    ("aggregator_vs_raw_ratio", ">= 0.45"),
    ("racers_per_shard_aggregated", ">= 10000"),
    ("freshness_p50_s", "<= window + 1.5"),
    ("freshness_p99_s", "<= window + 3"),
    ("api_p99_ms", "< 50"),
    ("lifo_newest10_wait_p50_s", "< fifo_newest10_wait_p50_s"),
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


def main() -> None:
    """Run everything, print the table, write the results."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and bisection steps")
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    started = time.monotonic()
    figures: dict[str, float] = {}

    def log(line: str) -> None:
        print(f"[{time.monotonic() - started:6.1f} s] {line}", flush=True)

    log("aggregator: core vs raw decode, writes per race, memory ...")
    figures.update(bench_aggregator.run(repetitions=5 if args.quick else 9))
    log("producer: KinesisProducer vs a plain put_records loop (moto server) ...")
    figures.update(producer_figures(records=10_000, repetitions=3 if args.quick else 5))
    live, series = bench_live.run(args.quick, log)
    figures.update(live)
    log("LIFO task queue vs a FIFO baseline, 5x overload, same run ...")
    figures.update(bench_lifo.run(seconds=20 if args.quick else 60))
    figures.update(machine())
    figures["bench_seconds"] = round(time.monotonic() - started, 1)

    (RESULTS / "latest.json").write_bytes(orjson.dumps(figures, option=orjson.OPT_INDENT_2))
    plots = plot(series, figures)

    print(f"\nPython {platform.python_version()}, {figures['machine_nproc']:.0f} CPUs, "
          f"{figures['machine_ram_gib']} GiB RAM")  # fmt: skip
    width = max(map(len, figures))
    goals = dict(GOALS)
    for name, value in figures.items():
        goal = goals.get(name, "")
        print(f"{name:<{width}}  {value:>14,.2f}  {goal}")
    print(f"\nwrote {RESULTS / 'latest.json'}, " + ", ".join(str(p) for p in plots))


if __name__ == "__main__":
    main()
