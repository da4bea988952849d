"""alleycat: run the stack locally, race on it, and read leaderboards — locally or on AWS.

    alleycat up                       start localcloud with the stack deployed (foreground)
    alleycat race --racers 1000       race with a live view (starts a local stack if none runs)
    alleycat leaderboard RACE_ID      a race's leaderboard from the API
    alleycat races [--class N]        races, newest first
    alleycat dashboard [--open]       the CloudWatch dashboard page (local, or --stack-name on AWS)

Every command takes --stack-name/--region/--profile to work against a deployed AWS stack
instead.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from alleycat.api import ApiError, LeaderboardApi
from alleycat.argtypes import MAX_ID, MAX_LIMIT, int_range, non_negative_float, port, positive_float
from alleycat.artifacts import choose_template
from alleycat.dashboard import PipelineWatch, add_dashboard_command
from alleycat.plan import add_plan_command
from alleycat.standings import StandingsFeed
from alleycat.target import LOCAL_INFO, StackTarget, TargetError, aws_target, local_target, signed_mqtt_url
from alleycat.view import RaceProgress, Throughput, plural, standings_table
from producers import KinesisProducer, RetryPolicy
from simulator import MAX_CLASSES, MAX_RACERS, RaceRunner, RunnerStats, plan_races


def _discard_stdout() -> None:
    """Point stdout at /dev/null, so neither later writes nor the final flush at exit fail."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)


class _Console(Console):
    """A console that outlives its reader.

    ``alleycat up | tee log``: Ctrl-C reaches the whole process group, so tee may be gone while
    shutdown prints. rich's default answer to the BrokenPipeError is SystemExit(1), which would skip
    the rest of the shutdown (saving state, removing local.json); drop the output instead.
    """

    def on_broken_pipe(self) -> None:
        self.quiet = True
        _discard_stdout()


console: Console = _Console()
err = Console(stderr=True)


class CliError(Exception):
    """A user-facing error: printed without a traceback, exit code 1."""


# -- shared options ----------------------------------------------------------------------------------


def _add_target_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("target (default: the local stack in .alleycat/local.json)")
    group.add_argument("--stack-name", help="use this deployed AWS stack (outputs from CloudFormation)")
    group.add_argument("--region", help="AWS region of --stack-name (default: the profile's)")
    group.add_argument("--profile", help="AWS profile for --stack-name")
    group.add_argument(
        "--local-config",
        type=Path,
        default=LOCAL_INFO,
        help=f"the local stack's description (default {LOCAL_INFO})",
    )


def _target(args: argparse.Namespace) -> StackTarget:
    if args.stack_name:
        return aws_target(args.stack_name, args.region, args.profile)
    return local_target(args.local_config)


_positive = int_range(1)
_racers = int_range(1, MAX_RACERS)
_limit = int_range(1, MAX_LIMIT)


def _parameter(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError("parameters look like KEY=VALUE, e.g. ShardCount=2")
    return key, value


def _classes(text: str) -> list[int]:
    try:
        classes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError("classes are comma-separated integers, e.g. 1,2,3") from exc
    if not classes or len(set(classes)) != len(classes) or min(classes) < 0:
        raise argparse.ArgumentTypeError("give distinct non-negative class ids, e.g. 1,2,3")
    if len(classes) > MAX_CLASSES:
        raise argparse.ArgumentTypeError(f"at most {MAX_CLASSES} classes per run")
    return classes


# -- up -----------------------------------------------------------------------------------------------


@contextmanager
def _tolerate_broken_stdout() -> Iterator[None]:
    """Output nobody reads any more is dropped, not fatal (see :class:`_Console`); Python ignores
    SIGPIPE, so a write to a pipe whose reader is gone raises BrokenPipeError."""
    try:
        yield
    except BrokenPipeError:
        _discard_stdout()


def _say(text: str) -> None:
    """Print a line to stdout, surviving a reader that went away."""
    with _tolerate_broken_stdout():
        console.print(text, soft_wrap=True)


@contextmanager
def _stop_signals() -> Iterator[threading.Event]:
    """Turn SIGINT/SIGTERM into an event, restoring the previous handlers afterwards."""
    stop = threading.Event()

    def handle(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


_STACK_KEYS = (
    "endpoint_url",
    "api_url",
    "mqtt_url",
    "mqtt_tcp_url",
    "dashboard_url",
    "viewer_url",
    "iot_data_url",
    "region",
)


def _print_stack(info: dict[str, Any]) -> None:
    rows = [(key, str(info.get(key, ""))) for key in _STACK_KEYS]
    rows += [
        (f"{name}.{key}", value)
        for name, stack in info["stacks"].items()
        for key, value in stack["outputs"].items()
    ]
    if not console.is_terminal:
        # Piped or logged: one "key: value" line each, so no URL is ever wrapped.
        for key, value in rows:
            console.print(f"{key}: {value}", soft_wrap=True, markup=False, highlight=False)
        return
    table = Table(title="Alleycat is running locally", title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)


def _default_template() -> Path:
    """The ``sam build`` output when it is current with the sources, else template.yaml; says which."""
    choice = choose_template()
    console.print(f"[dim]deploying {choice.path}: {choice.reason}[/]")
    return choice.path


def cmd_up(args: argparse.Namespace) -> int:
    """Start the local stack in the foreground until Ctrl-C / SIGTERM."""
    from alleycat.stack import LocalStack, StackStartError  # noqa: PLC0415 - heavy; only `up`/`race` need it

    stack = LocalStack(
        [Path(t) for t in args.template] or [_default_template()],
        home=args.home,
        port=args.port,
        persist=not args.no_state,
        parameters=dict(args.parameter),
        consumer=args.consumer,
        kcl_workers=args.kcl_workers,
        iot_open=args.iot_open,
    )
    with _stop_signals() as stop:
        console.print("[dim]starting localcloud and deploying…[/]")
        started = time.monotonic()
        try:
            info = stack.start()
        except StackStartError as exc:
            raise CliError(str(exc)) from exc
        try:
            with _tolerate_broken_stdout():
                _print_stack(info)
                kept = f"state is kept in {stack.home / 'state'}" if stack.persist else "no state is kept"
                console.print(
                    f"[green]ready[/] in {time.monotonic() - started:.1f} s · wrote {stack.info_path} · "
                    f"Ctrl-C stops ({kept})",
                    soft_wrap=True,
                )
            stop.wait()
        finally:
            # Stop (and save) first: whatever stdout is connected to may be gone by now.
            _say("[dim]stopping…[/]")
            stack.stop()
    _say("stopped")
    with _tolerate_broken_stdout():
        sys.stdout.flush()
    return 0


# -- race ---------------------------------------------------------------------------------------------


def _local_running(config: Path) -> bool:
    """A local.json whose endpoint answers."""
    try:
        target = local_target(config)
    except TargetError:
        return False
    try:
        target.client("sts").get_caller_identity()
    except Exception:  # any failure means the stack is not there
        return False
    return True


def cmd_race(args: argparse.Namespace) -> int:
    """Run a race against the target with a live view fed by the standings topic."""
    in_process = None
    if not args.stack_name and not _local_running(args.local_config):
        from alleycat.stack import LocalStack, StackStartError  # noqa: PLC0415 - heavy; only `up`/`race` need it

        console.print("[dim]no local stack is running: starting one for this race…[/]")
        # The race's results are the point: keep the stack's state, so the next `alleycat up` (or
        # `alleycat race`) serves them again, and keep serving after the race until Ctrl-C so the
        # URLs printed below stay true while they are read.
        in_process = LocalStack([_default_template()], home=args.local_config.parent, persist=True)
        try:
            in_process.start()
        except StackStartError as exc:
            raise CliError(str(exc)) from exc
    try:
        code = _race(args, _target(args))
        if in_process is not None:
            _serve_until_stopped(in_process.home / "state")
        return code
    finally:
        if in_process is not None:
            in_process.stop()


def _serve_until_stopped(state_dir: Path) -> None:
    """Keep the race's own stack serving its URLs until Ctrl-C / SIGTERM."""
    with _stop_signals() as stop:
        _say(
            "the local stack keeps serving the URLs above until Ctrl-C; its state is kept in "
            f"{state_dir}, so `alleycat up` serves these races again later",
        )
        stop.wait()
    _say("[dim]stopping…[/]")


def _print_pages(config: Path) -> None:
    """The local stack's pages, printed before the race so a browser can watch it from its start."""
    try:
        info = orjson.loads(config.read_bytes())
    except (OSError, ValueError):
        return
    for label, key in (("live leaderboard", "viewer_url"), ("dashboard", "dashboard_url")):
        if info.get(key):
            console.print(f"{label}: {info[key]}", soft_wrap=True)


def _race(args: argparse.Namespace, target: StackTarget) -> int:
    if target.is_local:
        _print_pages(args.local_config)
    # Device timestamps start now, so the screen can tell how far behind the racers standings are.
    specs = plan_races(
        args.classes,
        args.racers,
        duration=args.duration,
        seed=args.seed,
        start_epoch_ms=int(time.time() * 1000),
    )
    api = LeaderboardApi(target.api_url)
    feed = StandingsFeed(
        signed_mqtt_url(target),
        {s.race_id: target.standings_topic(s.race_id) for s in specs},
        # Locally the broker applies the viewers' policy to a client that names a viewer identity;
        # on AWS the signed URL carries the caller's own IAM identity instead.
        local_identity=f"local-{uuid.uuid4()}" if target.is_local else None,
    )
    feed.start()
    producer = KinesisProducer(
        stream_name=target.stream_name,
        client=target.client("kinesis"),
        aggregate=args.aggregate,
        # Aggregated records carry compressed batches: about 12 bytes per message instead of 160,
        # so one shard's 1 MiB/s carries tens of thousands of racers. Consumers decode both.
        compress=args.aggregate,
        max_in_flight=4,
        retry_policy=RetryPolicy(record_ttl=args.record_ttl),
    )
    latest: list[RunnerStats | None] = [None]
    throughput = Throughput()
    rate = [0.0]

    def progress(stats: RunnerStats) -> None:
        latest[0] = stats
        rate[0] = throughput.add(stats.sent)

    label = "local" if target.is_local else f"AWS {target.region}"
    # Throttled records and the aggregator's iterator age, from CloudWatch (locally and on AWS).
    watch = PipelineWatch(target, stack_name=args.stack_name).start()
    runner = RaceRunner(specs, producer, speed=args.speed, progress=progress)
    try:
        # A live screen on a terminal; plain progress lines when piped or logged.
        with RaceProgress(console, target=label) as screen:
            worker = threading.Thread(target=lambda: summary.append(runner.run()), daemon=True)
            summary: list[Any] = []
            with _stop_signals() as stop:
                worker.start()
                while worker.is_alive():
                    if stop.is_set():
                        runner.stop()
                    screen.show(specs, latest[0], rate[0], feed.snapshot(), watch.latest())
                    worker.join(0.25)
                producer.close()
                # The last window closes after the race: wait for every race to turn final.
                deadline = time.monotonic() + args.final_timeout
                while time.monotonic() < deadline and not stop.is_set():
                    boards = feed.snapshot()
                    screen.show(specs, latest[0], rate[0], boards, watch.latest())
                    if all(boards[s.race_id].status == "final" for s in specs):
                        break
                    time.sleep(0.25)
    finally:
        watch.stop()
        feed.stop()
        producer.close()
    run = summary[0] if summary else None
    boards = feed.snapshot()
    lags = sorted(lag for b in boards.values() for lag in b.lags)
    for spec in specs:
        try:
            body = api.leaderboard(spec.race_id, limit=10)
        except ApiError as exc:
            err.print(f"[red]race {spec.race_id}: {exc}[/]")
            continue
        title = f"Final results · race {spec.race_id} · class {spec.class_id} · {body['status']}"
        console.print(standings_table(title, body["standings"]))
        console.print(f"  full leaderboard: {api.url(f'/races/{spec.race_id}/leaderboard')}", soft_wrap=True)
    if run is not None:
        console.print(
            f"sent {plural(run.sent, 'message')} in {run.duration_seconds:.1f} s "
            f"({run.sent / max(run.duration_seconds, 1e-9):,.0f} msg/s) · retried {run.retried:,} · "
            f"failed {run.failed:,}"
        )
    if lags:
        p50 = lags[len(lags) // 2]
        console.print(
            f"MQTT standings: {plural(len(lags), 'update')}; from the newest racer message in an update "
            f"to its arrival here: p50 {p50:.1f} s, max {lags[-1]:.1f} s",
            soft_wrap=True,
        )
    if args.json_summary and run is not None:
        print(orjson.dumps(run.to_dict() | {"lagSeconds": lags}).decode())
    return 0 if run is not None and run.failed == 0 else 1


# -- reads --------------------------------------------------------------------------------------------


def cmd_leaderboard(args: argparse.Namespace) -> int:
    """Print a race's leaderboard."""
    api = LeaderboardApi(_target(args).api_url)
    body = api.get(f"/races/{args.race_id}/leaderboard", limit=args.limit)
    if args.json:
        print(orjson.dumps(body).decode())
        return 0
    title = (
        f"race {body['raceId']} · class {body['classId']} · {body['status']} · updated {body['updatedAt']}"
    )
    console.print(standings_table(title, body["standings"], limit=args.limit))
    if body.get("nextCursor"):
        console.print(
            f"[dim]more: {api.url(f'/races/{args.race_id}/leaderboard', cursor=body['nextCursor'])}[/]"
        )
    return 0


def cmd_races(args: argparse.Namespace) -> int:
    """Print races, newest first."""
    api = LeaderboardApi(_target(args).api_url)
    body = api.races(args.class_id, limit=args.limit)
    if args.json:
        print(orjson.dumps(body).decode())
        return 0
    table = Table(title="races" + (f" of class {args.class_id}" if args.class_id is not None else ""))
    for column in ("raceId", "classId", "status", "racers", "updatedAt"):
        table.add_column(column, justify="right" if column in ("raceId", "classId", "racers") else "left")
    if not body["races"]:
        which = f" of class {args.class_id}" if args.class_id is not None else ""
        console.print(f"no races{which} yet: start one with `alleycat race`", soft_wrap=True)
        return 0
    for race in body["races"]:
        table.add_row(*(str(race[c]) for c in ("raceId", "classId", "status", "racers", "updatedAt")))
    console.print(table)
    return 0


# -- parser -------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="alleycat", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = commands.add_parser(
        "up",
        help="start the local stack in the foreground",
        description="Start localcloud, deploy the template(s), serve the API, MQTT and a status page, "
        "and write .alleycat/local.json once everything is ready. Ctrl-C or SIGTERM stops it.",
    )
    up.add_argument(
        "--template",
        action="append",
        default=[],
        help="template to deploy (repeatable; default: .aws-sam/build/template.yaml when `sam build` "
        "is newer than the sources, else template.yaml)",
    )
    up.add_argument("--port", type=port, default=0, help="port of the AWS endpoint (default: a free one)")
    up.add_argument("--home", type=Path, default=Path(".alleycat"), help="state folder (default .alleycat)")
    up.add_argument("--no-state", action="store_true", help="do not load or save state")
    up.add_argument(
        "--parameter",
        action="append",
        default=[],
        type=_parameter,
        metavar="KEY=VALUE",
        help="template parameter override, repeatable (e.g. ShardCount=2, WindowSeconds=2)",
    )
    up.add_argument(
        "--consumer",
        choices=("lambda", "kcl"),
        default="lambda",
        help="who consumes the race stream: the aggregator's event source mapping (default) or KCL "
        "workers (consumers/kcl; needs Java 17+), with the mapping disabled",
    )
    up.add_argument(
        "--kcl-workers", type=_positive, default=2, help="KCL workers with --consumer kcl (default 2)"
    )
    up.add_argument(
        "--iot-open",
        action="store_true",
        help="let any MQTT client do anything on the local broker (default: the stack's IoT policies; "
        "viewers connect as cognito:<id>, devices as device, others are refused)",
    )
    up.set_defaults(handler=cmd_up)

    race = commands.add_parser(
        "race",
        help="run a simulated race with a live view",
        description="Simulate racers (one message per racer per second) into the target's stream and show "
        "the race live: clock, send rate, retries and failures, and each race's top 10 as published on "
        "its MQTT standings topic. Without --stack-name and with no local stack running, one is started "
        "for the race.",
    )
    race.add_argument("--racers", type=_racers, default=1000, help="racers per race, 1-10,000 (default 1000)")
    race.add_argument(
        "--classes", type=_classes, default=[1], help="comma-separated classes, one race each (default 1)"
    )
    race.add_argument("--duration", type=_positive, default=300, help="race length in seconds (default 300)")
    race.add_argument("--seed", type=int, default=0, help="random seed: same seed, same race (default 0)")
    race.add_argument(
        "--speed", type=positive_float, default=1.0, help="race seconds per wall second (default 1)"
    )
    race.add_argument(
        "--aggregate",
        action="store_true",
        help="KPL-aggregate records into compressed batches (far more racers per shard)",
    )
    race.add_argument(
        "--record-ttl",
        type=positive_float,
        default=30.0,
        help="seconds a message may keep retrying (default 30)",
    )
    race.add_argument(
        "--final-timeout",
        type=non_negative_float,
        default=60.0,
        help="seconds to wait for final standings after the race (60)",
    )
    race.add_argument("--json-summary", action="store_true", help="also print a JSON summary line")
    _add_target_options(race)
    race.set_defaults(handler=cmd_race)

    board = commands.add_parser(
        "leaderboard",
        help="print a race's leaderboard",
        description="Print a race's leaderboard from the API.",
    )
    board.add_argument("race_id", type=int_range(1, MAX_ID), metavar="RACE_ID")
    board.add_argument("--limit", type=_limit, default=20, help="rows (1-1000, default 20)")
    board.add_argument("--json", action="store_true", help="print the API's JSON")
    _add_target_options(board)
    board.set_defaults(handler=cmd_leaderboard)

    races = commands.add_parser(
        "races", help="list races, newest first", description="List races from the API, newest first."
    )
    races.add_argument("--class", dest="class_id", type=int_range(0, MAX_ID), help="only this class")
    races.add_argument("--limit", type=_limit, default=20, help="rows (1-1000, default 20)")
    races.add_argument("--json", action="store_true", help="print the API's JSON")
    _add_target_options(races)
    races.set_defaults(handler=cmd_races)

    add_dashboard_command(commands, _add_target_options)
    add_plan_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``alleycat`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except (CliError, TargetError, ApiError, TimeoutError) as exc:
        err.print(f"[red]error:[/] {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
