"""``python -m simulator``: simulate races and send them to a Kinesis stream (or print them)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

import orjson
from rich.console import Console

from leaderboard.domain.messages import MAX_SECOND
from producers import KinesisProducer, RetryPolicy
from simulator.progress import RichProgress, render_summary
from simulator.race import DEFAULT_DURATION, MAX_CLASSES, MAX_RACE_ID, MAX_RACERS, plan_races
from simulator.runner import JsonLinesSink, MessageSink, RaceRunner, RunSummary

DEFAULT_LOCAL_CONFIG = Path(".alleycat/local.json")

EPILOG = """\
examples:
  # 2 classes x 100 racers for 60 s against the local stack started by `alleycat up`: stream name,
  # endpoint and region come from the .alleycat/local.json it writes
  python -m simulator --racers 100 --classes 1,2 --duration 60 --seed 7

  # against the stack on AWS: the stream is the stack's StreamName output
  python -m simulator --racers 100 --region eu-west-1 --stream-name "$(aws cloudformation describe-stacks \\
      --stack-name alleycat --query "Stacks[0].Outputs[?OutputKey=='StreamName'].OutputValue" --output text)"

  # print the messages as JSON lines, no stream and no waiting
  python -m simulator --racers 3 --duration 5 --seed 1 --dry-run

Messages follow the Alleycat format; the last second of each race is the "final" message.
The same --seed, --start-time and --race-id-base always produce the same messages.
A loopback --endpoint-url (localcloud, moto) gets one PutRecords call in flight by default: moto
numbers a shard's records without a lock, so concurrent calls can overwrite each other's records.
Use --aggregate to go faster locally.
Exit status: 0 when every message was delivered, 1 when some failed, 2 for bad arguments.
"""


def _int_in(name: str, low: int, high: int) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{name} must be in {low}..{high}, got {value}")
        return value

    return parse


def _classes(text: str) -> list[int]:
    try:
        classes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"classes must be comma-separated integers like 1,2,3, got {text!r}"
        ) from None
    if not classes:
        raise argparse.ArgumentTypeError("give at least one class")
    if any(c < 0 for c in classes):
        raise argparse.ArgumentTypeError(f"class ids must be >= 0, got {text!r}")
    if len(set(classes)) != len(classes):
        raise argparse.ArgumentTypeError(f"class ids must be distinct, got {text!r}")
    if len(classes) > MAX_CLASSES:
        raise argparse.ArgumentTypeError(f"at most {MAX_CLASSES} classes, got {len(classes)}")
    return classes


def _speed(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"speed must be a number, got {text!r}") from None
    if not 0 < value <= 1_000_000:
        raise argparse.ArgumentTypeError(f"speed must be > 0, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser (exposed for front ends that embed the simulator)."""
    parser = argparse.ArgumentParser(
        prog="python -m simulator",
        description="Simulate Alleycat races: N racers per class, one message per racer per second, "
        "sent to a Kinesis data stream through the producer library (partition key = raceId).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    race = parser.add_argument_group("race")
    race.add_argument(
        "--racers",
        type=_int_in("racers", 1, MAX_RACERS),
        default=10,
        help=f"racers per race, 1..{MAX_RACERS} (default 10)",
    )
    race.add_argument(
        "--classes",
        type=_classes,
        default=[1],
        help="comma-separated class ids; each class races its own race (default 1)",
    )
    race.add_argument(
        "--duration",
        type=_int_in("duration", 1, MAX_SECOND + 1),  # the longest race the contract accepts
        default=DEFAULT_DURATION,
        help=f"race length in seconds (default {DEFAULT_DURATION})",
    )
    race.add_argument(
        "--seed", type=_int_in("seed", -(2**63), 2**63 - 1), default=0, help="random seed (default 0)"
    )
    race.add_argument(
        "--race-id-base",
        type=_int_in("race id base", 1, MAX_RACE_ID - MAX_CLASSES),
        default=None,
        help="raceId of the first class (the others follow: base+1, ...); default: derived from the "
        "seed and the start time",
    )
    race.add_argument(
        "--start-time",
        type=_int_in("start time", 0, 2**53),
        default=None,
        help="race start as epoch milliseconds, for reproducible deviceTimestamps (default: now)",
    )

    stream = parser.add_argument_group("stream")
    stream.add_argument("--stream-name", help="Kinesis stream name (or read from --local-config)")
    stream.add_argument("--endpoint-url", help="Kinesis endpoint, e.g. the local stack's endpoint_url")
    stream.add_argument("--region", help="AWS region (default: AWS_REGION, AWS_DEFAULT_REGION or us-east-1)")
    stream.add_argument(
        "--local-config",
        type=Path,
        default=DEFAULT_LOCAL_CONFIG,
        help="local stack description written by `alleycat up`, used for whatever stream options are "
        f"missing (default {DEFAULT_LOCAL_CONFIG})",
    )
    stream.add_argument("--aggregate", action="store_true", help="KPL-aggregate messages per race")
    stream.add_argument(
        "--max-in-flight",
        type=_int_in("max in flight", 1, 64),
        default=None,
        help="concurrent PutRecords calls (default 4; 1 for a loopback endpoint, see below)",
    )
    stream.add_argument(
        "--record-ttl",
        type=_speed,
        default=30.0,
        help="seconds a message may spend retrying before it counts as failed (default 30)",
    )

    run = parser.add_argument_group("run")
    run.add_argument("--speed", type=_speed, default=1.0, help="race seconds per wall second (default 1)")
    run.add_argument(
        "--dry-run", action="store_true", help="write the messages to stdout as JSON lines instead of sending"
    )
    run.add_argument("--realtime", action="store_true", help="pace a --dry-run by the clock too")
    run.add_argument("--quiet", action="store_true", help="no live progress display")
    run.add_argument("--json-summary", action="store_true", help="print the summary as one JSON object")
    return parser


def _stream_settings(args: argparse.Namespace, parser: argparse.ArgumentParser) -> dict[str, Any]:
    """Stream name, endpoint and region: flags first, then the local stack's description."""
    settings: dict[str, Any] = {
        "stream_name": args.stream_name,
        "endpoint_url": args.endpoint_url,
        "region": args.region,
    }
    config_path: Path = args.local_config
    if (args.stream_name is None or args.endpoint_url is None) and config_path.is_file():
        try:
            local = json.loads(config_path.read_text())
        except (OSError, ValueError) as exc:
            parser.error(f"cannot read {config_path}: {exc}")
        if args.stream_name is None:
            stacks = local.get("stacks", {}).values()
            names = [s.get("outputs", {}).get("StreamName") for s in stacks if isinstance(s, dict)]
            settings["stream_name"] = next((n for n in names if n), None)
        if args.endpoint_url is None and args.stream_name is None:
            settings["endpoint_url"] = local.get("endpoint_url")
        if args.region is None:
            settings["region"] = local.get("region")
    if settings["stream_name"] is None:
        parser.error("--stream-name is required (or --dry-run, or a local stack description)")
    settings["region"] = (
        settings["region"]
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or "us-east-1"
    )
    return settings


def _max_in_flight(requested: int | None, endpoint_url: str | None) -> int:
    if requested is not None:
        return requested
    host = urlsplit(endpoint_url).hostname if endpoint_url else None
    return 1 if host in {"127.0.0.1", "localhost", "::1"} else 4


def _ensure_local_credentials(endpoint_url: str | None) -> None:
    # A local endpoint accepts any credentials; supply dummies so a fresh machine works out of the box.
    if endpoint_url and not (os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE")):
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")


def _print_summary(summary: RunSummary, *, as_json: bool, console: Console) -> None:
    if as_json:
        console.file.write(orjson.dumps(summary.to_dict()).decode() + "\n")
        console.file.flush()
    else:
        console.print(render_summary(summary))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the simulator command line; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.realtime and not args.dry_run:
        parser.error("--realtime only applies to --dry-run (streaming runs are always paced)")
    start_ms = args.start_time if args.start_time is not None else time.time_ns() // 1_000_000
    races = plan_races(
        args.classes,
        args.racers,
        duration=args.duration,
        seed=args.seed,
        start_epoch_ms=start_ms,
        race_id_base=args.race_id_base,
    )
    # In a dry run stdout carries the messages, so everything for humans goes to stderr.
    console = Console(stderr=args.dry_run)
    sink: MessageSink
    producer: KinesisProducer | None = None
    if args.dry_run:
        sink = JsonLinesSink(sys.stdout.buffer)
    else:
        settings = _stream_settings(args, parser)
        _ensure_local_credentials(settings["endpoint_url"])
        producer = KinesisProducer(
            settings["stream_name"],
            endpoint_url=settings["endpoint_url"],
            region=settings["region"],
            aggregate=args.aggregate,
            max_in_flight=_max_in_flight(args.max_in_flight, settings["endpoint_url"]),
            retry_policy=RetryPolicy(record_ttl=args.record_ttl),
        )
        sink = producer

    show_progress = not args.quiet and (not args.dry_run or sys.stderr.isatty())
    progress = RichProgress(Console(stderr=True)) if show_progress else None
    runner = RaceRunner(
        races,
        sink,
        speed=args.speed,
        realtime=args.realtime or not args.dry_run,
        progress=progress,
    )
    interrupted = _stop_on_signals(runner)
    try:
        if progress is not None:
            with progress:
                summary = runner.run()
        else:
            summary = runner.run()
    finally:
        _restore_signals()
        if producer is not None:
            producer.close()
    _print_summary(summary, as_json=args.json_summary, console=console)
    if interrupted.is_set():
        return 130
    return 1 if summary.failed else 0


_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_previous_handlers: dict[int, Any] = {}


def _stop_on_signals(runner: RaceRunner) -> threading.Event:
    """First Ctrl-C / SIGTERM: finish the current second, deliver what is queued, summarise.
    A second Ctrl-C interrupts at once."""
    interrupted = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        return interrupted

    def handle(signum: int, frame: FrameType | None) -> None:
        interrupted.set()
        runner.stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    for sig in _SIGNALS:
        _previous_handlers[sig] = signal.signal(sig, handle)
    return interrupted


def _restore_signals() -> None:
    for sig, handler in _previous_handlers.items():
        signal.signal(sig, handler)
    _previous_handlers.clear()
