"""Figures that need the whole stack running locally (LocalStack: localcloud + API Gateway + IoT MQTT).

    .venv/bin/python bench/bench_live.py [--quick]

One stack is started with ``ShardCount=1`` and the default 5-second window, and localcloud's
Kinesis shard limits on (1,000 records/s and 1 MiB/s written per shard, 5 reads/s and 2 MiB/s read).

1. ``freshness_p50_s`` / ``freshness_p99_s``: 1,000 racers race for ``FRESHNESS_SECONDS``; each
   second's messages carry the wall-clock time they were sent as ``deviceTimestamp``. A subscriber
   on the race's MQTT standings topic notes when each update arrives and which race second it
   covers up to (its ``second``); every message of the seconds it newly covers gets latency =
   arrival - that second's ``deviceTimestamp``. Reported beside ``window_s``. Measured twice, each
   on a fresh stack warmed up by a small race first (so no function's cold start is measured):
   calm (``freshness_p99_calm_s``), and with ``LOAD_CORES`` child process(es) spinning on a core
   each for the time of the race (``freshness_p50_s`` / ``freshness_p99_s``, the figures the goal
   is set for, with the 1-minute load average at the race's end, ``freshness_load_avg``).
2. ``racers_per_shard_plain`` / ``racers_per_shard_aggregated``: a bisection over racer counts.
   Each probe races N racers at 1 Hz for ``PROBE_SECONDS`` on the single shard (plain JSON records,
   or KPL-aggregated compressed batches) and passes when the producer kept pace (each second's
   messages handed over within ``MAX_LATENESS_S`` of its start), no record failed, every message
   was counted in DynamoDB, and the aggregator's iterator age stayed flat: it saw-tooths with the
   tumbling window (the shard waits while a window's final invocation writes), so "flat" means it
   came back below ``CAUGHT_UP_AGE_S`` in the last 40% of the probe — a growing backlog never does.
   Each kind of measurement gets a fresh stack: moto's GetRecords scans a shard from its start, so
   a long stream would slow the later probes down.

The API's latency is measured by ``bench_api.py`` (a load generator in a process of its own), on a
stack from :func:`local_stack` holding a race from :func:`write_finished_race`.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from alleycat.stack import LocalStack  # noqa: E402
from leaderboard.adapters.dynamodb import DynamoRaceStore  # noqa: E402
from leaderboard.domain import RaceDelta, RacerDelta  # noqa: E402
from producers import KinesisProducer, RetryPolicy  # noqa: E402
from simulator import generate_race_messages, plan_races  # noqa: E402
from simulator.race import MAX_RACERS  # noqa: E402

WINDOW_S = 5
FRESHNESS_RACERS = 1000
FRESHNESS_SECONDS = 40
# Before each measured race: a small race that starts the functions' execution environments.
WARM_UP_RACERS = 50
WARM_UP_SECONDS = WINDOW_S + 2
WARM_UP_TIMEOUT_S = 60.0
# The loaded freshness run: this many child processes, each spinning on one core.
LOAD_CORES = 1
PROBE_SECONDS = 10
MAX_LATENESS_S = 1.5
CAUGHT_UP_AGE_S = 1.5
# The finished race bench_api.py measures the API with.
API_RACERS = 10_000


@dataclass
class Probe:
    """One capacity probe: N racers for a few seconds on the one shard."""

    racers: int
    aggregated: bool
    passed: bool = False
    reason: str = ""
    max_lateness_s: float = 0.0
    drain_s: float = 0.0  # from the end of sending until every record was delivered
    failed_records: int = 0
    counted: int = 0
    expected: int = 0
    iterator_age_s: list[tuple[float, float]] = field(default_factory=list)  # (t, age)
    kinesis_records: int = 0
    bytes_sent: int = 0


@contextmanager
def local_stack() -> Iterator[LocalStack]:
    """The whole stack on 127.0.0.1, one shard, state in a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="alleycat-bench-") as home:
        stack = LocalStack(
            home=Path(home),
            persist=False,
            # The API's stage throttle (200 requests/s by default) would cap the latency test's
            # load; it measures the API path, so the throttle is raised out of the way.
            parameters={
                "ShardCount": "1",
                "WindowSeconds": str(WINDOW_S),
                "ApiThrottleRate": "100000",
                "ApiThrottleBurst": "100000",
            },
            # Close a race's last window soon after its last message (AWS waits for more records).
            window_idle_wait_s=1.0,
        )
        stack.start()
        try:
            yield stack
        finally:
            # Let the last windows and standings finish, rather than stop under the publisher.
            if stack.cloud is not None:
                stack.cloud.wait_for_mappings(timeout=30, include_windows=True)
            stack.stop()


def _outputs(stack: LocalStack) -> dict[str, str]:
    return stack.stacks["alleycat"].outputs


def _race_base() -> int:
    # A fresh id range per run and probe, so races of earlier probes never mix in.
    return 3_000_000_000 + int(time.time() * 10) % 100_000_000 * 10


def race_seconds(racers: int, seconds: int, seed: int) -> tuple[list[int], list[list[dict[str, Any]]]]:
    """The messages of ``racers`` racers (split into races of at most 10,000) per second.

    Every message is an ``update``: a ``final`` makes the aggregator offer each racer's personal
    best, one conditional UpdateItem each, which moto serves at ~25 ms apiece (tens of seconds for
    a thousand racers) — an emulator cost that says nothing about a shard or about freshness.
    """
    races = math.ceil(racers / MAX_RACERS)
    sizes = [racers // races + (1 if i < racers % races else 0) for i in range(races)]
    base = _race_base()
    specs = [
        plan_races([i + 1], size, duration=seconds, seed=seed, race_id_base=base + i)[0]
        for i, size in enumerate(sizes)
    ]
    per_race = [list(generate_race_messages(spec)) for spec in specs]
    by_second = [[m | {"event": "update"} for race in per_race for m in race[s]] for s in range(seconds)]
    return [spec.race_id for spec in specs], by_second


def send_paced(
    producer: KinesisProducer,
    by_second: list[list[dict[str, Any]]],
    on_second: Callable[[int, int], None] | None = None,
    give_up_after_s: float | None = None,
) -> float:
    """Send each second's messages at 1 Hz, stamped with the wall clock; returns the worst lateness.

    Lateness: how long after its second's start the last message of the second was handed over
    (``put`` blocks when the producer cannot keep up, so a shard too slow shows up here). Past
    ``give_up_after_s`` of lateness the rest is not sent: the probe has failed already.
    """
    start = time.time() + 0.2
    worst = 0.0
    for index, messages in enumerate(by_second):
        due = start + index
        time.sleep(max(0.0, due - time.time()))
        stamp = int(time.time() * 1000)
        for message in messages:
            message["deviceTimestamp"] = stamp
            producer.put(orjson.dumps(message), message["raceId"])
        if on_second is not None:
            on_second(index + 1, stamp)
        worst = max(worst, time.time() - due)
        if give_up_after_s is not None and worst > give_up_after_s:
            break
    return worst


def aggregator_iterator_age_s(stack: LocalStack) -> float:
    """The aggregator mapping's iterator age on the shard (localcloud's ESM statistics)."""
    assert stack.cloud is not None
    engine = stack.cloud.mapping_engine
    ages = [s.iterator_age_ms for s in engine.stats() if "Aggregator" in s.function_arn]
    return max(ages, default=0) / 1000


def counted_messages(stack: LocalStack, race_ids: list[int]) -> int:
    """Distinct (racer, second) pairs the stack's table holds for these races."""
    assert stack.cloud is not None
    store = DynamoRaceStore(stack.cloud.client("dynamodb"), _outputs(stack)["TableName"])
    return sum(score.seconds_counted for race_id in race_ids for score in store.load_scores(race_id))


def probe(stack: LocalStack, racers: int, aggregated: bool, seconds: int = PROBE_SECONDS) -> Probe:
    """Race ``racers`` at 1 Hz on the one shard and judge whether it kept up."""
    assert stack.cloud is not None
    result = Probe(racers=racers, aggregated=aggregated, expected=racers * seconds)
    race_ids, by_second = race_seconds(racers, seconds, seed=racers)
    stop = threading.Event()
    began = time.monotonic()

    def sample() -> None:
        # While sending only: once the race is over the shard idles with its last window open.
        while not stop.wait(0.5):
            result.iterator_age_s.append((time.monotonic() - began, aggregator_iterator_age_s(stack)))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    producer = KinesisProducer(
        stream_name=_outputs(stack)["StreamName"],
        client=stack.cloud.client("kinesis"),
        aggregate=aggregated,
        compress=aggregated,
        max_in_flight=4,
        linger_seconds=0.1,
        # A probe that needs long retries has failed already; do not wait 30 s to learn it.
        retry_policy=RetryPolicy(record_ttl=5.0),
    )
    try:
        result.max_lateness_s = send_paced(producer, by_second, give_up_after_s=2 * MAX_LATENESS_S)
    finally:
        sent_at = time.monotonic()
        outcome = producer.close()
        result.drain_s = time.monotonic() - sent_at
        stop.set()
        sampler.join()
    stats = producer.stats()
    result.failed_records = len(outcome.failed)
    result.kinesis_records, result.bytes_sent = stats.kinesis_records, stats.bytes
    stack.cloud.wait_for_mappings(timeout=60, include_windows=True)
    result.counted = counted_messages(stack, race_ids)
    ages = [age for _, age in result.iterator_age_s]
    late_ages = ages[len(ages) * 3 // 5 :] or [0.0]
    if result.failed_records:
        result.reason = f"{result.failed_records} records failed"
    elif result.max_lateness_s > MAX_LATENESS_S:
        result.reason = f"producer fell {result.max_lateness_s:.1f} s behind"
    elif result.drain_s > MAX_LATENESS_S:
        result.reason = f"throttled: delivery ended {result.drain_s:.1f} s after the race"
    elif result.counted != result.expected:
        result.reason = f"counted {result.counted} of {result.expected}"
    elif min(late_ages) > CAUGHT_UP_AGE_S:
        result.reason = f"iterator age growing (>= {min(late_ages):.1f} s at the end)"
    else:
        result.passed = True
    return result


def bisect_capacity(
    stack: LocalStack, aggregated: bool, low: int, high: int, steps: int, log: Callable[[str], None]
) -> tuple[int, list[Probe]]:
    """The largest racer count that passes, between ``low`` (assumed to pass) and ``high``."""
    probes: list[Probe] = []
    best = 0
    for _ in range(steps):
        racers = (low + high) // 2
        result = probe(stack, racers, aggregated)
        probes.append(result)
        mode = "aggregated" if aggregated else "plain"
        verdict = "ok" if result.passed else f"FAIL ({result.reason})"
        log(
            f"  {mode:>10} {racers:>7,} racers: {verdict}; worst lateness {result.max_lateness_s:.2f} s, "
            f"delivered {result.drain_s:.2f} s after the last second"
        )
        if result.passed:
            best = max(best, racers)
            low = racers
        else:
            high = racers
    return best, probes


# -- freshness ---------------------------------------------------------------------------------------


class UpdateLog:
    """Standings updates of one race as they arrive on MQTT: (arrival time, second covered)."""

    def __init__(self, ws_url: str, topic: str, name: str = "bench") -> None:
        self.updates: list[tuple[float, int]] = []
        self._topic = topic
        self._ready = threading.Event()
        url = urlsplit(ws_url)
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"{name}-viewer", transport="websockets"
        )
        self._client.ws_set_options(path=url.path or "/mqtt")
        # The local broker applies the stack's IoT policies: connect as a viewer does (a Cognito
        # identity named in the user name, a client id that starts with it).
        self._client.username_pw_set(f"cognito:{name}")
        self._client.on_connect = lambda c, *_: c.subscribe(topic, 1)
        self._client.on_subscribe = lambda *_: self._ready.set()
        self._client.on_message = self._on_message
        self._client.connect(url.hostname or "127.0.0.1", url.port or 80)
        self._client.loop_start()
        if not self._ready.wait(10):
            raise TimeoutError("no MQTT subscription")

    def _on_message(self, client: Any, userdata: Any, message: mqtt.MQTTMessage) -> None:
        body = orjson.loads(message.payload)
        self.updates.append((time.time(), int(body.get("second", 0))))

    def stop(self) -> None:
        """Disconnect."""
        self._client.disconnect()
        self._client.loop_stop()


def _send_race(
    endpoint_url: str, region: str, stream: str, by_second: list[list[dict[str, Any]]]
) -> dict[int, int]:
    """Send a race at 1 Hz (in a child process); returns each second's ``deviceTimestamp``."""
    client: Any = boto3.client(
        "kinesis",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
    )
    sent: dict[int, int] = {}
    with KinesisProducer(stream_name=stream, client=client, linger_seconds=0.05) as producer:
        send_paced(producer, by_second, on_second=sent.__setitem__)
    return sent


def _send_race_from_stdin() -> None:
    """The child process's side of :func:`send_race_in_child`: JSON job in, send stamps out."""
    job = orjson.loads(sys.stdin.buffer.read())
    sent = _send_race(job["endpoint_url"], job["region"], job["stream"], job["by_second"])
    sys.stdout.buffer.write(orjson.dumps({str(k): v for k, v in sent.items()}))


def send_race_in_child(stack: LocalStack, by_second: list[list[dict[str, Any]]]) -> dict[int, int]:
    """Send a race from a process of its own, as racers' devices are; returns the send stamps.

    In the stack's own process the producer (encoding 1,000 records a second, its HTTP client
    threads) would compete for the interpreter lock with the stack it measures, and on a busy
    machine its records would reach the stream seconds after their ``deviceTimestamp``: that
    measured the harness, not the path from the stream to the viewer.
    """
    assert stack.cloud is not None
    job = {
        "endpoint_url": stack.cloud.endpoint_url,
        "region": stack.cloud.region,
        "stream": _outputs(stack)["StreamName"],
        "by_second": by_second,
    }
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
            "import bench_live; bench_live._send_race_from_stdin()",
        ],
        input=orjson.dumps(job),
        capture_output=True,
        timeout=len(by_second) + 120,
        check=False,
    )
    if child.returncode != 0:
        raise RuntimeError(f"the race's producer failed: {child.stderr.decode()[-2000:]}")
    return {int(k): v for k, v in orjson.loads(child.stdout).items()}


def _warm_up(stack: LocalStack, topic_prefix: str) -> None:
    """Race a few racers until their standings come over MQTT, so no cold start is measured.

    Freshness is a steady-state figure: the first invocation of each function starts its
    execution environment (seconds on a busy machine, once per environment), which would
    otherwise delay the first window's standings of every measured race by that much.
    """
    assert stack.cloud is not None and stack.iot is not None
    race_ids, by_second = race_seconds(WARM_UP_RACERS, WARM_UP_SECONDS, seed=3)
    log = UpdateLog(stack.iot.ws_url, f"{topic_prefix}/races/{race_ids[0]}/standings", "bench-warm-up")
    try:
        with KinesisProducer(
            stream_name=_outputs(stack)["StreamName"],
            client=stack.cloud.client("kinesis"),
            linger_seconds=0.05,
        ) as producer:
            send_paced(producer, by_second)
        deadline = time.monotonic() + WARM_UP_TIMEOUT_S
        while not log.updates and time.monotonic() < deadline:
            time.sleep(0.2)
        if not log.updates:
            raise RuntimeError(f"no standings within {WARM_UP_TIMEOUT_S} s of the warm-up race")
        stack.cloud.wait_for_mappings(timeout=WARM_UP_TIMEOUT_S, include_windows=True)
    finally:
        log.stop()


@contextmanager
def cpu_load(cores: int) -> Iterator[None]:
    """``cores`` child processes, each spinning on one core, for the time of the block.

    The background load of the loaded freshness run: defined, reproducible and bounded (the
    children are killed when the block ends, however it ends).
    """
    burners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"], stdin=subprocess.DEVNULL)
        for _ in range(cores)
    ]
    try:
        yield
    finally:
        for burner in burners:
            burner.kill()
        for burner in burners:
            burner.wait()


def freshness(stack: LocalStack, warm_up: bool = True) -> tuple[dict[str, float], list[float]]:
    """Per-message latency from deviceTimestamp to the MQTT update that first covers its second.

    Also ``freshness_load_avg``: the 1-minute load average when the race ends (it covers the race).
    """
    assert stack.cloud is not None and stack.iot is not None
    prefix = _outputs(stack).get("IotTopicPrefix", "alleycat")
    if warm_up:
        _warm_up(stack, prefix)
    race_ids, by_second = race_seconds(FRESHNESS_RACERS, FRESHNESS_SECONDS, seed=7)
    topic = f"{prefix}/races/{race_ids[0]}/standings"
    log = UpdateLog(stack.iot.ws_url, topic)
    sent = send_race_in_child(stack, by_second)
    load_avg = os.getloadavg()[0]
    stack.cloud.wait_for_mappings(timeout=60, include_windows=True)
    # The last update travels through the table's stream and the publisher.
    deadline = time.monotonic() + 10
    while max((second for _, second in log.updates), default=0) < FRESHNESS_SECONDS:
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    log.stop()
    latencies: list[float] = []
    covered = 0
    for arrived, second in sorted(log.updates):
        for s in range(covered + 1, min(second, FRESHNESS_SECONDS) + 1):
            latencies += [arrived - sent[s] / 1000] * FRESHNESS_RACERS
        covered = max(covered, second)
    if covered < FRESHNESS_SECONDS:
        raise RuntimeError(f"standings covered only {covered} of {FRESHNESS_SECONDS} seconds")
    quantiles = statistics.quantiles(latencies, n=100)
    figures = {
        "freshness_p50_s": statistics.median(latencies),
        "freshness_p99_s": quantiles[98],
        "window_s": WINDOW_S,
        "freshness_updates": len(log.updates),
        "freshness_load_avg": load_avg,
    }
    return figures, latencies


def freshness_calm_and_loaded(log: Callable[[str], None]) -> tuple[dict[str, float], dict[str, Any]]:
    """Freshness on a fresh stack each: calm, then with ``LOAD_CORES`` cores kept busy alongside.

    ``freshness_p50_s`` / ``freshness_p99_s`` / ``freshness_load_avg`` are the loaded run's (the
    goal is set under load); the calm run's are ``freshness_p50_calm_s`` / ``freshness_p99_calm_s``
    / ``freshness_load_avg_calm``.
    """
    figures: dict[str, float] = {}
    series: dict[str, Any] = {}
    with local_stack() as stack:
        log(f"freshness, calm: {FRESHNESS_RACERS:,} racers over MQTT ...")
        calm, calm_latencies = freshness(stack)
    with local_stack() as stack:
        log(f"freshness, {LOAD_CORES} core(s) kept busy by a child process: {FRESHNESS_RACERS:,} racers ...")
        with cpu_load(LOAD_CORES):
            loaded, latencies = freshness(stack)
    figures.update(loaded)
    figures["freshness_p50_calm_s"] = calm["freshness_p50_s"]
    figures["freshness_p99_calm_s"] = calm["freshness_p99_s"]
    figures["freshness_load_avg_calm"] = calm["freshness_load_avg"]
    series["freshness_latencies_s"] = latencies
    series["freshness_latencies_calm_s"] = calm_latencies
    return figures, series


# -- API ---------------------------------------------------------------------------------------------


def write_finished_race(stack: LocalStack, racers: int, seconds: int = 300) -> int:
    """A finished race of ``racers`` racers x ``seconds`` written through the aggregator's store.

    The race is merged live and then closed (as the race closer does) rather than finished by
    ``final`` messages, which would add 10,000 personal-best writes at moto's ~25 ms each.
    """
    assert stack.cloud is not None
    race_id = _race_base() + 7
    store = DynamoRaceStore(stack.cloud.client("dynamodb"), _outputs(stack)["TableName"])
    delta = RaceDelta(race_id=race_id, class_id=90 + racers % 7, messages=racers * seconds)
    now_ms = int(time.time() * 1000)
    delta.first_device_ts, delta.last_device_ts = now_ms - seconds * 1000, now_ms
    for racer_id in range(1, racers + 1):
        outputs = {s: 9000 + (racer_id * 7919 + s * 104729) % 5000 for s in range(1, seconds + 1)}
        delta.racers[racer_id] = RacerDelta(f"Racer {racer_id}", outputs, None, seconds)
    outcome = store.merge(delta)
    if outcome.race is None or not store.close_race(race_id, outcome.race.version):
        raise RuntimeError("could not close the benchmark race")
    return race_id


def run(quick: bool, log: Callable[[str], None] = print) -> tuple[dict[str, float], dict[str, Any]]:
    """Every live figure; also the raw series the plots need."""
    figures: dict[str, float] = {}
    series: dict[str, Any] = {}
    fresh, fresh_series = freshness_calm_and_loaded(log)
    figures.update(fresh)
    series.update(fresh_series)
    with local_stack() as stack:
        log("capacity: plain JSON records on one shard ...")
        plain, plain_probes = bisect_capacity(stack, False, 600, 1400, 2 if quick else 3, log)
    with local_stack() as stack:
        log("capacity: aggregated, compressed batches on one shard ...")
        packed, packed_probes = bisect_capacity(stack, True, 4000, 36000, 2 if quick else 3, log)
    figures["racers_per_shard_plain"] = plain
    figures["racers_per_shard_aggregated"] = packed
    series["probes"] = [p.__dict__ for p in plain_probes + packed_probes]
    best = [p for p in packed_probes if p.passed]
    if best:
        top = max(best, key=lambda p: p.racers)
        figures["aggregated_bytes_per_message"] = top.bytes_sent / top.expected
    return figures, series


def main() -> None:
    """Run the live figures and print them."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer bisection steps")
    args = parser.parse_args()
    figures, _ = run(args.quick)
    width = max(map(len, figures))
    for name, value in figures.items():
        print(f"{name:<{width}}  {value:>14,.2f}")


if __name__ == "__main__":
    main()
