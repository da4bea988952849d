"""API latency under load, measured by locust in a process of its own.

    .venv/bin/python bench/bench_api.py [--quick]

A local stack is started (``bench_live.local_stack``: the stage throttle raised out of the way), a
finished 10,000-racer, 300-second race is written into its table (``bench_live.write_finished_race``)
and ``CLASS_BESTS`` personal bests into the race's class. After a warm-up that starts every execution
environment, locust (``bench/locustfile_api.py``, headless, ``FastHttpUser``) runs ``CLIENTS``
closed-loop clients against one route at a time for ``SECONDS`` (``QUICK_SECONDS`` with ``--quick``):

- ``leaderboard``: ``GET /races/{id}/leaderboard?limit=100`` → ``api_p50_ms``, ``api_p99_ms``,
  ``api_rps`` (goals: p99 < 50 ms, p50 < 10 ms);
- ``around``: ``GET /races/{id}/racers/{random racer}?around=5`` → ``api_around_p99_ms``;
- ``class``: ``GET /classes/{classId}/leaderboard?limit=100`` → ``api_class_p99_ms``.

Every answer must be a 200 with rows; ``api_errors`` counts the others (it must be 0). The load
generator runs in its own process, so its clients do not compete with the front door for this
interpreter's lock; they do compete for the machine's cores, like any client on the same machine.
Without locust the benchmark says so and returns no figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # as bench/run_all.py imports its siblings

from bench_live import API_RACERS, local_stack, write_finished_race  # noqa: E402

from leaderboard.adapters.dynamodb import DynamoRaceStore  # noqa: E402
from leaderboard.domain.race import FinalResult  # noqa: E402

LOCUSTFILE = Path(__file__).with_name("locustfile_api.py")
CLIENTS = 8
SECONDS = 15
QUICK_SECONDS = 8
WARM_UP_ROUNDS = 3
CLASS_BESTS = 300
ROUTES = ("leaderboard", "around", "class")


def locust_command() -> str | None:
    """The locust executable of this environment (or on PATH), or None when it is not installed."""
    beside = Path(sys.executable).with_name("locust")
    if beside.is_file():
        return str(beside)
    return shutil.which("locust")


def seed_class_bests(store: DynamoRaceStore, class_id: int, race_id: int, count: int) -> None:
    """``count`` personal bests in ``class_id``, so its board has more than one page."""
    now = datetime.now(UTC)
    store.record_results(
        [
            FinalResult(
                class_id, racer_id, f"Racer {racer_id}", race_id, 20_000_000 + racer_id * 997 % 50_000, now
            )
            for racer_id in range(1, count + 1)
        ]
    )


def _get(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=60) as response:
        body: dict[str, object] = json.loads(response.read())
    return body


def warm_up(base_url: str, race_id: int, class_id: int) -> None:
    """Every route from ``CLIENTS`` threads at once, a few times: starts each execution environment
    and fills each one's caches, so the measurement sees a warm API."""
    urls = [
        f"{base_url}/races/{race_id}/leaderboard?limit=100",
        f"{base_url}/races/{race_id}/racers/1?around=5",
    ]
    with ThreadPoolExecutor(CLIENTS) as pool:
        for _ in range(WARM_UP_ROUNDS):
            list(pool.map(_get, urls * CLIENTS))
    # The class board is not cached by the API (each request is a Query, ~0.2 s of moto's time):
    # a few at a time, or the warm-up itself queues past the integration timeout.
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(_get, [f"{base_url}/classes/{class_id}/leaderboard?limit=100"] * 4))


def run_locust(
    locust: str, base_url: str, route: str, seconds: int, env: dict[str, str]
) -> tuple[list[float], int, float]:
    """``CLIENTS`` locust users on ``route`` for ``seconds``: (ms of each good answer, failures, wall s)."""
    with tempfile.TemporaryDirectory(prefix="alleycat-locust-") as folder:
        out = Path(folder) / "samples.json"
        command = [
            locust,
            "-f",
            str(LOCUSTFILE),
            "--headless",
            "--host",
            base_url,
            "-u",
            str(CLIENTS),
            "-r",
            str(CLIENTS),
            "-t",
            f"{seconds}s",
            "--only-summary",
            "--loglevel",
            "WARNING",
            "--exit-code-on-error",
            "0",
            "--stop-timeout",
            "5",
        ]
        child_env = {**os.environ, **env, "API_BENCH_ROUTE": route, "API_BENCH_OUT": str(out)}
        started = time.perf_counter()
        done = subprocess.run(
            command, env=child_env, capture_output=True, text=True, timeout=seconds + 60, check=False
        )
        wall = time.perf_counter() - started
        if done.returncode != 0 or not out.is_file():
            raise RuntimeError(f"locust failed ({done.returncode}): {done.stderr[-2000:]}")
        samples = json.loads(out.read_text(encoding="utf-8"))
    good = [ms for ok, ms in samples if ok]
    return good, len(samples) - len(good), wall


def _p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100)[98]


def _stamped(text: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {text}", flush=True)


def run(quick: bool = False, log: Callable[[str], None] = _stamped) -> dict[str, float]:
    """Every API figure (empty when locust is not installed)."""
    locust = locust_command()
    if locust is None:
        log("bench_api: locust is not installed (`make setup` installs it); skipping the API figures")
        return {}
    seconds = QUICK_SECONDS if quick else SECONDS
    figures: dict[str, float] = {}
    with local_stack() as stack:
        assert stack.cloud is not None
        outputs = stack.stacks["alleycat"].outputs
        log(f"API: writing a finished {API_RACERS:,}-racer race ...")
        race_id = write_finished_race(stack, API_RACERS)
        base_url = outputs["ApiUrl"]
        class_id = int(str(_get(f"{base_url}/races/{race_id}/leaderboard?limit=1")["classId"]))
        store = DynamoRaceStore(stack.cloud.client("dynamodb"), outputs["TableName"])
        seed_class_bests(store, class_id, race_id, CLASS_BESTS)
        log("API: warming up ...")
        warm_up(base_url, race_id, class_id)
        env = {
            "API_BENCH_RACE": str(race_id),
            "API_BENCH_RACERS": str(API_RACERS),
            "API_BENCH_CLASS": str(class_id),
        }
        errors = 0
        for route in ROUTES:
            log(f"API: {CLIENTS} locust clients on {route} for {seconds} s ...")
            good, failed, _ = run_locust(locust, base_url, route, seconds, env)
            errors += failed
            log(
                f"     {len(good):,} answers, {failed} failed; p50 {statistics.median(good):.1f} ms, "
                f"p99 {_p99(good):.1f} ms"
            )
            if route == "leaderboard":
                figures["api_p50_ms"] = statistics.median(good)
                figures["api_p99_ms"] = _p99(good)
                # Answers per second of the measured run (locust's start-up excluded).
                figures["api_rps"] = len(good) / seconds
                figures["api_requests"] = len(good)
            elif route == "around":
                figures["api_around_p50_ms"] = statistics.median(good)
                figures["api_around_p99_ms"] = _p99(good)
            else:
                figures["api_class_p50_ms"] = statistics.median(good)
                figures["api_class_p99_ms"] = _p99(good)
        figures["api_errors"] = errors
    return figures


def main() -> None:
    """Run the API benchmark and print its figures."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK_SECONDS} s per route instead of {SECONDS}"
    )
    args = parser.parse_args()
    figures = run(args.quick)
    if not figures:
        return
    width = max(map(len, figures))
    for name, value in figures.items():
        print(f"{name:<{width}}  {value:>12,.2f}")


if __name__ == "__main__":
    main()
