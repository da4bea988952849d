"""LIFO task queue vs a FIFO baseline, same legacy system, same overload, same run.

    .venv/bin/python bench/bench_lifo.py [--seconds 60] [--capacity 10]

One LocalCloud holds both stacks: patterns/lifo-queue (DynamoDB, newest first) and its FIFO baseline
(an SQS queue feeding the same legacy stand-in, oldest first). Two load generators offer each the
same 5x overload at the same time; both shed tasks older than the same TTL. Every legacy call is
recorded in a ledger; the figure is the median wait (creation → legacy call) of the newest 10% of the
tasks created, for each queue: ``lifo_newest10_wait_p50_s`` and ``fifo_newest10_wait_p50_s``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PATTERN = ROOT / "patterns" / "lifo-queue"
sys.path.insert(0, str(PATTERN / "src" / "shared"))
sys.path.insert(0, str(PATTERN))

from lifo_load import generate_load  # noqa: E402
from lifo_measure import newest_share_wait_p50, overtaken_share, read_ledger, runs_overlap  # noqa: E402
from lifo_queue.store import TaskStore  # noqa: E402
from lifo_queue.tasks import Task  # noqa: E402


def run(seconds: float = 60.0, capacity: float = 10.0, ttl_s: float = 30.0) -> dict[str, float]:
    """Overload both queues for ``seconds`` at 5x ``capacity``; the figures."""
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        os.environ.setdefault(key, value)
    from localcloud import LocalCloud  # noqa: PLC0415 - heavy, only needed here

    rate = 5 * capacity
    with (
        tempfile.TemporaryDirectory(prefix="bench-lifo-") as scratch,
        LocalCloud(
            metrics=False, api_gateway=False, iot=False, ttl_sweep_interval_s=1.0, async_time_scale=0.01
        ) as cloud,
    ):
        lifo_ledger, fifo_ledger = Path(scratch) / "lifo.jsonl", Path(scratch) / "fifo.jsonl"
        common = {"TaskTtlSeconds": str(int(ttl_s)), "LegacyCapacityPerSecond": str(capacity)}
        lifo = cloud.deploy(
            PATTERN / "template.yaml",
            "lifo",
            parameters={**common, "LegacyLedgerPath": str(lifo_ledger), "ProcessingWindowSeconds": "60"},
        ).outputs
        fifo = cloud.deploy(
            PATTERN / "baseline" / "template.yaml",
            "fifo",
            parameters={**common, "LegacyLedgerPath": str(fifo_ledger)},
        ).outputs
        store = TaskStore(cloud.client("dynamodb"), lifo["TaskTableName"])
        sqs = cloud.client("sqs")

        def to_fifo(task: Task) -> None:
            body = {"taskId": task.task_id, "created": task.created, "payload": task.payload}
            sqs.send_message(QueueUrl=fifo["TaskQueueUrl"], MessageBody=json.dumps(body))

        created: dict[str, dict[str, float]] = {}

        def load(name: str, submit: Any) -> None:
            def progress(count: int, elapsed: float) -> None:
                if int(elapsed) % 10 == 0:
                    print(f"  {name}: {elapsed:5.1f} s, {count:,} tasks", flush=True)

            tasks = generate_load(submit, rate, seconds, ttl_s, progress=progress)
            created[name] = {t.task_id: t.created for t in tasks}

        print(f"LIFO vs FIFO: {rate:g} tasks/s for {seconds:g} s into each, legacy capacity {capacity:g}/s")
        threads = [
            threading.Thread(target=load, args=("lifo", store.put_new)),
            threading.Thread(target=load, args=("fifo", to_fifo)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        # Both drain within the TTL: the LIFO queue through tail calls, the FIFO one by shedding.
        deadline = time.monotonic() + ttl_s + 30
        while time.monotonic() < deadline and (store.newest_pending(1) or not cloud.sqs_trigger.idle()):
            time.sleep(0.5)
        time.sleep(2.0)
        lifo_entries, fifo_entries = read_ledger(lifo_ledger), read_ledger(fifo_ledger)

    lifo_wait = newest_share_wait_p50(created["lifo"], lifo_entries)
    fifo_wait = newest_share_wait_p50(created["fifo"], fifo_entries)
    figures = {
        "lifo_newest10_wait_p50_s": round(lifo_wait, 2) if lifo_wait is not None else float("nan"),
        # A FIFO under sustained overload serves its newest tasks last or sheds them: then their
        # wait is at least the TTL, the figure reported.
        "fifo_newest10_wait_p50_s": round(fifo_wait, 2) if fifo_wait is not None else float(ttl_s),
        "lifo_served_share": round(len(lifo_entries) / max(1, len(created["lifo"])), 3),
        "fifo_served_share": round(len(fifo_entries) / max(1, len(created["fifo"])), 3),
        "lifo_overtaken_share": round(overtaken_share(created["lifo"], lifo_entries), 3),
        "fifo_overtaken_share": round(overtaken_share(created["fifo"], fifo_entries), 3),
        "lifo_task_ttl_s": ttl_s,
        # What the generators managed on this machine (the target is 5x capacity).
        "lifo_offered_per_s": round(len(created["lifo"]) / seconds, 1),
        "fifo_offered_per_s": round(len(created["fifo"]) / seconds, 1),
    }
    served_twice = len(lifo_entries) - len({e.task_id for e in lifo_entries})
    overlap = runs_overlap(lifo_entries)
    print(f"  LIFO: {len(lifo_entries):,} served, {served_twice} twice, runs overlap: {overlap}")
    for key, value in figures.items():
        print(f"  {key:28s} {value}")
    return figures


def main() -> None:
    """Run it on its own."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--capacity", type=float, default=10.0)
    parser.add_argument("--ttl", type=float, default=30.0)
    args = parser.parse_args()
    run(args.seconds, args.capacity, args.ttl)


if __name__ == "__main__":
    main()
