"""Producer throughput: KinesisProducer vs a plain boto3 put_records loop, same run, alternating.

    .venv/bin/python bench/bench_producer.py [--records 20000] [--repetitions 5]

A moto server runs in a child process on 127.0.0.1 (so the server does not compete with the client
for the GIL). Each repetition runs every variant once, in a rotated order, against a fresh stream;
the table shows medians. A second table runs the same variants against a local endpoint that
accepts every request at once (real boto3 serialization and HTTP, no emulator cost): the
client-side ceiling.

Records are simulator messages (~150 bytes) from 10 races, partition key = raceId.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from producers import KinesisProducer, build_kinesis_client
from simulator import generate_race_messages, plan_races

REGION = "us-east-1"
MOTO_SERVER = """
import logging, sys
logging.disable(logging.INFO)
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()
server.stop()
"""

# An endpoint that accepts every PutRecords at once: real boto3 serialization and HTTP, no emulator
# cost, so it shows what the client side can push (Kinesis itself scales by adding shards).
CANNED_SERVER = """
import json, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # One write per response and no Nagle: otherwise delayed ACKs add ~40 ms to every call.
    wbufsize = 1 << 16
    disable_nagle_algorithm = True

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.headers.get("X-Amz-Target", "").endswith("PutRecords"):
            ok = {"SequenceNumber": "1", "ShardId": "shardId-0"}
            out = {"FailedRecordCount": 0, "Records": [ok] * len(body["Records"])}
        else:
            out = {"StreamDescription": {"StreamStatus": "ACTIVE"}}
        data = json.dumps(out).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
print(server.server_address[1], flush=True)
sys.stdin.read()
server.shutdown()
"""

Record = tuple[str, bytes]
# A variant gets the endpoint's clients (plain boto3, the producer's) and a stream name.
Clients = dict[str, Any]
Variant = Callable[[Clients, str, list[Record]], None]


def workload(count: int) -> list[Record]:
    races = plan_races(list(range(1, 11)), racers=max(1, count // 10), duration=1, seed=1, start_epoch_ms=0)
    records = [
        (str(race.race_id), orjson.dumps(message))
        for race in races
        for message in next(generate_race_messages(race))
    ]
    return records[:count]


def plain_loop(clients: Clients, stream: str, records: list[Record]) -> None:
    """What one writes without a library: sequential 500-record calls, no retries."""
    client = clients["plain"]
    for start in range(0, len(records), 500):
        chunk = records[start : start + 500]
        client.put_records(StreamName=stream, Records=[{"Data": d, "PartitionKey": k} for k, d in chunk])


def producer_variant(max_in_flight: int, aggregate: bool = False) -> Variant:
    def run(clients: Clients, stream: str, records: list[Record]) -> None:
        with KinesisProducer(
            stream,
            client=clients["producer"],
            max_in_flight=max_in_flight,
            aggregate=aggregate,
            linger_seconds=None,
        ) as producer:
            for key, data in records:
                producer.put(data, key)
        assert producer.last_result is not None and producer.last_result.ok, producer.last_result

    return run


VARIANTS: dict[str, Variant] = {
    "plain boto3 loop": plain_loop,
    "producer, 1 in flight": producer_variant(1),
    "producer, 4 in flight": producer_variant(4),
    "producer, 4 in flight, aggregated": producer_variant(4, aggregate=True),
}


@contextmanager
def local_server(script: str) -> Iterator[str]:
    """Run ``script`` in a child process; it prints its port; closing its stdin stops it."""
    server = subprocess.Popen(
        [sys.executable, "-c", script],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert server.stdout is not None
        yield f"http://127.0.0.1:{int(server.stdout.readline())}"
    finally:
        if server.stdin is not None:
            server.stdin.close()
        server.wait(timeout=10)


def plain_client(endpoint: str) -> Any:
    """boto3 as one would use it without the library: default configuration."""
    return boto3.client(
        "kinesis",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def endpoint_clients(endpoint: str) -> Clients:
    """Clients built once per endpoint, outside the timed runs."""
    return {
        "plain": plain_client(endpoint),
        # Exactly what KinesisProducer builds from endpoint_url/region, with room for 4 in flight.
        "producer": build_kinesis_client(endpoint_url=endpoint, region=REGION, max_pool_connections=8),
    }


def measure(
    clients: Clients, make_stream: Callable[[], str], records: list[Record], repetitions: int
) -> dict[str, list[float]]:
    rates: dict[str, list[float]] = {name: [] for name in VARIANTS}
    names = list(VARIANTS)
    for rep in range(repetitions):
        # Rotate the order so no variant always runs first (warm caches) or last (fuller server).
        for name in names[rep % len(names) :] + names[: rep % len(names)]:
            stream = make_stream()
            started = time.perf_counter()
            VARIANTS[name](clients, stream, records)
            rates[name].append(len(records) / (time.perf_counter() - started))
    return rates


def print_table(title: str, rates: dict[str, list[float]]) -> None:
    baseline = statistics.median(rates["plain boto3 loop"])
    print(f"\n{title}")
    print(f"{'variant':<36} {'median rec/s':>13} {'min':>10} {'max':>10} {'vs plain':>9}")
    for name, values in rates.items():
        median = statistics.median(values)
        spread = f"{min(values):>10,.0f} {max(values):>10,.0f}"
        print(f"{name:<36} {median:>13,.0f} {spread} {median / baseline:>8.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--shards", type=int, default=4)
    args = parser.parse_args()
    # Local endpoints accept any credentials; the producer's client reads them from the environment.
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    records = workload(args.records)
    print(f"{len(records):,} records of ~{sum(len(d) for _, d in records) // len(records)} bytes, "
          f"{args.repetitions} repetitions, medians")  # fmt: skip

    with local_server(MOTO_SERVER) as endpoint:
        clients = endpoint_clients(endpoint)

        def fresh_stream() -> str:
            name = f"bench-{uuid.uuid4().hex[:8]}"
            clients["plain"].create_stream(StreamName=name, ShardCount=args.shards)
            clients["plain"].get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1})
            return name

        rates = measure(clients, fresh_stream, records, args.repetitions)
        print_table(f"against a moto server ({args.shards} shards)", rates)

    with local_server(CANNED_SERVER) as endpoint:
        rates = measure(endpoint_clients(endpoint), lambda: "canned", records, args.repetitions)
        print_table("against an endpoint that accepts everything at once (client-side cost)", rates)
    print(
        "\nNote: moto 5.2 numbers records without a lock, so concurrent PutRecords can overwrite records "
        "in moto;\nthe 4-in-flight rows measure speed only. Real Kinesis has no such race."
    )


if __name__ == "__main__":
    main()
