"""Load generator: creates device-connection tasks at a steady rate, faster than the legacy system.

    python lifo_load.py --table <TaskTableName> --rate 50 --seconds 60 [--ttl 300] [--endpoint-url URL]

Run against a local stack (``localcloud up template.yaml``: take ``--endpoint-url`` and the table
name from what it prints) or a deployed one (no ``--endpoint-url``). Prints progress every second.
Each task expires (``expiresAt``) ``--ttl`` seconds after creation: use the stack's TaskTtlSeconds.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

# The shared layer's code, as Lambda would find it under /opt/python.
sys.path.insert(0, str(Path(__file__).resolve().parent / "src" / "shared"))

from lifo_queue.store import TaskStore, new_task
from lifo_queue.tasks import Task


def generate_load(
    submit: Callable[[Task], None],
    rate: float,
    seconds: float,
    ttl_s: float,
    *,
    progress: Callable[[int, float], None] | None = None,
    stop: threading.Event | None = None,
) -> list[Task]:
    """Create ``rate`` tasks per second for ``seconds`` seconds, handing each to ``submit``.

    Tasks are created on a fixed schedule (the i-th at start + i / rate), so a slow ``submit``
    does not lower the rate unless it is slower than the schedule; the run ends after ``seconds``
    whatever was created. Returns the tasks created.
    """
    created: list[Task] = []
    started = time.monotonic()
    total = int(rate * seconds)
    next_report = 1.0
    for i in range(total):
        if (stop is not None and stop.is_set()) or time.monotonic() - started >= seconds:
            break  # a submit slower than the schedule lowers the rate, never stretches the run
        due = started + i / rate
        wait = due - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        task = new_task({"device": f"device-{i % 997}", "sequence": str(i)}, ttl_s, time.time())
        submit(task)
        created.append(task)
        elapsed = time.monotonic() - started
        if progress is not None and elapsed >= next_report:
            progress(len(created), elapsed)
            next_report += 1.0
    return created


def main(argv: list[str] | None = None) -> int:
    """Entry point: put tasks into the stack's table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--table", required=True, help="the stack's TaskTableName output")
    parser.add_argument("--rate", type=float, default=50.0, help="tasks per second (default 50)")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long (default 60)")
    parser.add_argument(
        "--ttl", type=float, default=300.0, help="seconds before a task is shed (default 300)"
    )
    parser.add_argument("--endpoint-url", default=None, help="a local endpoint, e.g. http://127.0.0.1:4566")
    parser.add_argument("--region", default="us-east-1")
    args = parser.parse_args(argv)

    import boto3  # noqa: PLC0415 - only the command needs it

    client = boto3.client("dynamodb", endpoint_url=args.endpoint_url, region_name=args.region)
    store = TaskStore(client, args.table)

    def progress(count: int, elapsed: float) -> None:
        print(f"{elapsed:6.1f} s  {count:7,d} tasks created  ({count / elapsed:,.1f}/s)", flush=True)

    tasks = generate_load(store.put_new, args.rate, args.seconds, args.ttl, progress=progress)
    print(f"done: {len(tasks):,} tasks in {args.seconds:g} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
