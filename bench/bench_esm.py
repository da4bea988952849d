"""Event source mapping throughput: records/s through one Kinesis mapping, and overhead per batch.

    .venv/bin/python bench/bench_esm.py [--records 20000] [--batch-sizes 1,100,1000] [--repetitions 3]

A moto server (with localcloud's moto adjustments) runs in a child process on 127.0.0.1 so the
emulator does not compete with the engine for the GIL. For each batch size, a fresh one-shard
stream is pre-loaded, a mapping (TRIM_HORIZON) is created and a MappingEngine with an in-process
invoker drains it; the handler only counts records. Reported per batch size (medians):

- records/s   : records delivered / time from engine start to the last record delivered
- steady/s    : records delivered / time from the first invocation to the last record delivered
- batches     : invocations
- ms/batch    : wall time per invocation (engine + GetRecords + handler)
- overhead ms : per invocation, excluding the handler's own time
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from localcloud.esm import EngineSettings, MappingEngine
from localcloud.invocation import InvocationResult

SERVER = """
import sys
from localcloud.esm import moto_compat
moto_compat.apply()
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()
"""


class CountingInvoker:
    """Counts delivered records; remembers when the last expected record arrived."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.records = 0
        self.batches = 0
        self.handler_s = 0.0
        self.done = threading.Event()
        self.finished_at = 0.0
        self.first_at = 0.0

    def invoke(self, function: str, event: Any) -> InvocationResult:
        started = time.perf_counter()
        if not self.first_at:
            self.first_at = started
        # What a runtime does at minimum: the event crosses a JSON boundary.
        payload = json.loads(json.dumps(event))
        self.records += len(payload["Records"])
        self.batches += 1
        self.handler_s += time.perf_counter() - started
        if self.records >= self.expected:
            self.finished_at = time.perf_counter()
            self.done.set()
        return InvocationResult(request_id=str(uuid.uuid4()), payload=None)


def _clients(endpoint: str) -> dict[str, Any]:
    kw = {
        "endpoint_url": endpoint,
        "region_name": "us-east-1",
        "aws_access_key_id": "x",
        "aws_secret_access_key": "x",
    }
    return {name: boto3.client(name, **kw) for name in ("kinesis", "lambda", "iam")}  # type: ignore[call-overload]


def _function(clients: dict[str, Any]) -> str:
    role = clients["iam"].create_role(RoleName=f"r-{uuid.uuid4().hex[:6]}", AssumeRolePolicyDocument="{}")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("h.py", "def handler(e, c):\n    return None\n")
    created = clients["lambda"].create_function(
        FunctionName=f"bench-{uuid.uuid4().hex[:6]}",
        Runtime="python3.11",
        Role=role["Role"]["Arn"],
        Handler="h.handler",
        Code={"ZipFile": buf.getvalue()},
    )
    return str(created["FunctionArn"])


def run_once(endpoint: str, records: int, batch_size: int) -> dict[str, float]:
    """One drain of ``records`` records with ``batch_size``."""
    clients = _clients(endpoint)
    function = _function(clients)
    stream = f"bench-{uuid.uuid4().hex[:8]}"
    clients["kinesis"].create_stream(StreamName=stream, ShardCount=1)
    body = json.dumps({"event": "update", "raceId": 5400802, "racerId": 101, "cadence": 72, "pad": "x" * 60})
    for start in range(0, records, 500):
        clients["kinesis"].put_records(
            StreamName=stream,
            Records=[
                {"Data": body.encode(), "PartitionKey": str(i % 50)}
                for i in range(start, min(records, start + 500))
            ],
        )
    arn = clients["kinesis"].describe_stream(StreamName=stream)["StreamDescription"]["StreamARN"]
    mapping = clients["lambda"].create_event_source_mapping(
        FunctionName=function, EventSourceArn=arn, StartingPosition="TRIM_HORIZON", BatchSize=batch_size
    )
    invoker = CountingInvoker(records)
    engine = MappingEngine(endpoint, "us-east-1", invoker, settings=EngineSettings(sync_interval_s=0.2))
    started = time.perf_counter()
    engine.start()
    try:
        if not invoker.done.wait(600):
            raise RuntimeError("timed out")
    finally:
        engine.stop()
        clients["lambda"].delete_event_source_mapping(UUID=mapping["UUID"])
    elapsed = invoker.finished_at - started
    return {
        "records_per_s": records / elapsed,
        "batches": invoker.batches,
        "ms_per_batch": elapsed * 1000 / invoker.batches,
        "overhead_ms": (elapsed - invoker.handler_s) * 1000 / invoker.batches,
        "steady_records_per_s": records / (invoker.finished_at - invoker.first_at),
        "elapsed_s": elapsed,
    }


def main() -> None:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--batch-sizes", default="1,100,1000")
    parser.add_argument("--repetitions", type=int, default=3)
    args = parser.parse_args()
    root = Path(__file__).resolve().parents[1]
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=root,
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        endpoint = f"http://127.0.0.1:{port}"
        print(f"records per run: {args.records}, repetitions: {args.repetitions}, one shard, moto in a child")
        columns = ("batch size", 10), ("records/s", 10), ("steady/s", 9), ("batches", 8), ("ms/batch", 9)
        print(" ".join(f"{name:>{width}}" for name, width in columns), f"{'overhead ms':>12}")
        for batch_size in (int(b) for b in args.batch_sizes.split(",")):
            # Small batches are slow per record: keep their runs short.
            count = min(args.records, 2_000) if batch_size < 10 else args.records
            runs = [run_once(endpoint, count, batch_size) for _ in range(args.repetitions)]
            median = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
            print(
                f"{batch_size:>10} {median['records_per_s']:>10.0f} {median['steady_records_per_s']:>9.0f} "
                f"{median['batches']:>8.0f} "
                f"{median['ms_per_batch']:>9.2f} {median['overhead_ms']:>12.2f}"
            )
    finally:
        if server.stdin is not None:
            server.stdin.close()
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
