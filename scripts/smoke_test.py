#!/usr/bin/env python3
"""Smoke test of a running Alleycat stack: a short race goes in, its final standings must come out.

Against a stack deployed to AWS (what the deploy workflow runs after deploying the test stack)::

    python scripts/smoke_test.py --stack-name alleycat-test --region eu-west-1

Against the local stack of ``alleycat up`` (endpoint, region and local API URL from its local.json)::

    python scripts/smoke_test.py --local-config .alleycat/local.json

or any other endpoint serving the AWS APIs (``--api-url`` gives the API's base URL there)::

    python scripts/smoke_test.py --stack-name alleycat --endpoint-url http://127.0.0.1:4566 --api-url URL

Steps: read the stack's outputs (CloudFormation DescribeStacks), send one simulated race to its
stream with the project's producer, then poll ``GET /races`` and ``GET /races/{id}/leaderboard``
until the race is listed and final with every racer at the last second, in ranking order. Exit
status 0 on success; 1 with a one-line reason (what was missing, and the last API answer) otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from alleycat.api import ApiError, LeaderboardApi
from producers import KinesisProducer, ProducerError, RetryPolicy
from simulator import RaceRunner, RaceSpec, plan_races

# Stack states whose resources are all in place; anything else (in progress, failed, rolled back
# after a failed create, deleted) means there is nothing trustworthy to test.
USABLE_STATES = frozenset(
    {"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE"}
)
REQUIRED_OUTPUTS = ("StreamName", "ApiUrl")
LOCAL_STACK = "alleycat"  # the name `alleycat up` deploys template.yaml under


class SmokeTestError(Exception):
    """The stack failed the smoke test (or could not be tested); the message says why."""


@dataclass(frozen=True)
class Target:
    """The stack under test: where to send messages and where to read standings."""

    stack_name: str
    region: str
    stream_name: str
    api_url: str
    endpoint_url: str | None
    session: boto3.session.Session

    def client(self, service: str) -> Any:
        """A boto3 client of ``service`` for this target."""
        return self.session.client(service, endpoint_url=self.endpoint_url)  # type: ignore[call-overload]

    def where(self) -> str:
        """Region, and the endpoint when it is not AWS, for messages."""
        return self.region + (f" at {self.endpoint_url}" if self.endpoint_url else "")


def log(message: str) -> None:
    """One progress line, flushed at once so CI logs show it as it happens."""
    print(f"[smoke {time.strftime('%H:%M:%S')}] {message}", flush=True)


# -- the target -------------------------------------------------------------------------------------


def _read_local_config(path: Path) -> dict[str, Any]:
    try:
        info: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise SmokeTestError(f"{path} not found: is `alleycat up` running?") from exc
    except (OSError, ValueError) as exc:
        raise SmokeTestError(f"{path} is unreadable: {exc}") from exc
    if not info.get("endpoint_url"):
        raise SmokeTestError(f"{path} has no endpoint_url")
    return info


def _stack_outputs(
    session: boto3.session.Session, stack_name: str, endpoint_url: str | None
) -> dict[str, str]:
    where = (session.region_name or "?") + (f" at {endpoint_url}" if endpoint_url else "")
    cloudformation = session.client("cloudformation", endpoint_url=endpoint_url)
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        # "Stack with id X does not exist" and AccessDenied both arrive here; the message says which.
        message = exc.response.get("Error", {}).get("Message", str(exc))
        raise SmokeTestError(f"cannot read stack {stack_name!r} in {where}: {message}") from exc
    except BotoCoreError as exc:  # no credentials, endpoint unreachable, ...
        raise SmokeTestError(f"cannot read stack {stack_name!r} in {where}: {exc}") from exc
    if not stacks:
        raise SmokeTestError(f"stack {stack_name!r} not found in {where}")
    stack = stacks[0]
    status = stack.get("StackStatus", "")
    if status not in USABLE_STATES:
        raise SmokeTestError(f"stack {stack_name!r} is {status}, not deployed and stable")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    missing = [key for key in REQUIRED_OUTPUTS if not outputs.get(key)]
    if missing:
        raise SmokeTestError(
            f"stack {stack_name!r} lacks the outputs {', '.join(missing)}: not an Alleycat stack?"
        )
    return outputs


def resolve_target(args: argparse.Namespace) -> Target:
    """The stack under test, from the arguments (and local.json when given)."""
    info = _read_local_config(args.local_config) if args.local_config else {}
    endpoint_url = args.endpoint_url or info.get("endpoint_url")
    region = args.region or info.get("region")
    stack_name = args.stack_name or (LOCAL_STACK if info else None)
    if not stack_name:
        raise SmokeTestError("no stack to test: pass --stack-name (or --local-config for a local stack)")
    if endpoint_url:
        # A local endpoint accepts any credentials; never send a developer's real ones there.
        session = boto3.session.Session(
            aws_access_key_id="smoke", aws_secret_access_key="smoke", region_name=region or "us-east-1"
        )
    else:
        session = boto3.session.Session(profile_name=args.profile, region_name=region)
    if session.region_name is None:
        raise SmokeTestError("no region: pass --region (or set AWS_REGION)")
    outputs = _stack_outputs(session, stack_name, endpoint_url)
    api_url = args.api_url
    if not api_url and info:
        # local.json carries the stack's outputs with the API URL rewritten to the local gateway.
        local_outputs = info.get("stacks", {}).get(stack_name, {}).get("outputs", {})
        api_url = local_outputs.get("ApiUrl") or info.get("api_url")
    if not api_url:
        api_url = outputs["ApiUrl"]
        if endpoint_url and ".execute-api." in api_url:
            raise SmokeTestError(f"ApiUrl {api_url} is an AWS URL: pass --api-url with the local API's URL")
    return Target(
        stack_name=stack_name,
        region=session.region_name,
        stream_name=outputs["StreamName"],
        api_url=api_url.rstrip("/"),
        endpoint_url=endpoint_url,
        session=session,
    )


# -- the race ---------------------------------------------------------------------------------------


def send_race(target: Target, args: argparse.Namespace) -> RaceSpec:
    """Play one race into the stack's stream; fails unless every message was accepted."""
    # The start time feeds the raceId, so every run races under a new id and never mixes with an
    # earlier run's race.
    (spec,) = plan_races(
        [args.class_id],
        args.racers,
        duration=args.duration,
        seed=args.seed,
        start_epoch_ms=int(time.time() * 1000),
    )
    log(
        f"race {spec.race_id}: {spec.racers} racers x {spec.duration} s in class {spec.class_id} "
        f"to stream {target.stream_name} ({target.where()})"
    )
    try:
        producer = KinesisProducer(
            stream_name=target.stream_name,
            client=target.client("kinesis"),
            retry_policy=RetryPolicy(record_ttl=args.record_ttl),
        )
        try:
            summary = RaceRunner([spec], producer, speed=args.speed).run()
        finally:
            producer.close()
    except (ProducerError, ClientError, BotoCoreError) as exc:
        raise SmokeTestError(f"sending race {spec.race_id} failed: {exc}") from exc
    if summary.failed or summary.sent != spec.message_count:
        codes = ", ".join(f"{code} x{n}" for code, n in summary.failures_by_code.items()) or "none reported"
        raise SmokeTestError(
            f"race {spec.race_id}: the stream accepted {summary.sent} of {spec.message_count} messages "
            f"(failures: {codes})"
        )
    log(f"race {spec.race_id}: sent {summary.sent} messages in {summary.duration_seconds:.1f} s")
    return spec


# -- the standings ----------------------------------------------------------------------------------


def _check_order(race_id: int, standings: list[dict[str, Any]]) -> None:
    """The ranking contract: totalOutput descending, ties by racerId, tied racers share a rank."""
    expected = sorted(standings, key=lambda s: (-s["totalOutput"], s["racerId"]))
    if [s["racerId"] for s in standings] != [s["racerId"] for s in expected]:
        raise SmokeTestError(f"race {race_id}: standings are not in ranking order")
    previous: dict[str, Any] | None = None
    for position, row in enumerate(standings, start=1):
        tied = previous is not None and previous["totalOutput"] == row["totalOutput"]
        wanted = previous["rank"] if tied and previous is not None else position
        if row["rank"] != wanted:
            raise SmokeTestError(
                f"race {race_id}: racer {row['racerId']} has rank {row['rank']}, expected {wanted}"
            )
        previous = row


def _progress(spec: RaceSpec, listed: bool, board: dict[str, Any] | None) -> tuple[bool, str]:
    """Whether the race is complete in the API, and how far it got (for the log and the failure)."""
    if not listed:
        return False, f"race {spec.race_id} not yet in GET /races?classId={spec.class_id}"
    if board is None:
        return False, f"race {spec.race_id} listed, its leaderboard not served yet"
    standings = board.get("standings", [])
    at_end = sum(1 for s in standings if s.get("second") == spec.duration)
    state = (
        f"race {spec.race_id} {board.get('status')}: {len(standings)}/{spec.racers} racers, "
        f"{at_end} at second {spec.duration}"
    )
    done = board.get("status") == "final" and len(standings) == spec.racers and at_end == spec.racers
    return done, state


def wait_for_standings(
    api: LeaderboardApi, spec: RaceSpec, timeout: float, interval: float
) -> dict[str, Any]:
    """Poll the API until the race is listed and final with every racer; returns its leaderboard."""
    deadline = time.monotonic() + timeout
    last_state = last_error = ""
    while True:
        listed, board, error = False, None, ""
        try:
            races = api.races(spec.class_id, limit=50)["races"]
            listed = any(race.get("raceId") == spec.race_id for race in races)
            if listed:
                board = api.leaderboard(spec.race_id, limit=max(spec.racers, 1))
        except ApiError as exc:
            # Cold starts, a 404 before the first window lands, a gateway still warming up: all
            # worth another poll. The last one is reported if time runs out.
            error = str(exc)
        done, state = _progress(spec, listed, board)
        if state != last_state:
            log(state)
            last_state = state
        if error and error != last_error:
            log(f"API: {error}")
        last_error = error or last_error
        if done and board is not None:
            _check_order(spec.race_id, board["standings"])
            return board
        if time.monotonic() >= deadline:
            detail = f"; last API error: {last_error}" if last_error else ""
            raise SmokeTestError(f"no final standings within {timeout:g} s: {state}{detail}")
        time.sleep(interval)


# -- command line -----------------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="smoke_test.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    where = parser.add_argument_group("the stack")
    where.add_argument(
        "--stack-name", help=f"CloudFormation stack name (default with --local-config: {LOCAL_STACK})"
    )
    where.add_argument("--region", help="its region (default: the profile's, or local.json's)")
    where.add_argument("--profile", help="AWS profile (AWS only)")
    where.add_argument("--endpoint-url", help="AWS API endpoint of a local stack (localcloud)")
    where.add_argument("--api-url", help="the leaderboard API's base URL (default: its ApiUrl output)")
    where.add_argument(
        "--local-config",
        type=Path,
        help="local.json written by `alleycat up` (e.g. .alleycat/local.json): endpoint, region and API URL",
    )
    race = parser.add_argument_group("the race")
    race.add_argument("--racers", type=_positive_int, default=20, help="racers (default 20, at most 1000)")
    race.add_argument("--duration", type=_positive_int, default=20, help="race seconds (default 20)")
    race.add_argument(
        "--speed", type=_positive_float, default=1.0, help="race seconds per wall second (default 1)"
    )
    race.add_argument(
        "--class-id",
        type=int,
        default=99,
        help="class of the race (default 99, kept apart from real classes' personal bests)",
    )
    race.add_argument("--seed", type=int, default=0, help="simulator seed (default 0)")
    race.add_argument(
        "--record-ttl",
        type=_positive_float,
        default=30.0,
        help="seconds a message may keep retrying (default 30)",
    )
    check = parser.add_argument_group("the check")
    check.add_argument(
        "--timeout",
        type=_positive_float,
        default=300.0,
        help="seconds to wait for final standings after the race (default 300: on AWS the last tumbling "
        "window can stay open a while after the race)",
    )
    check.add_argument("--poll-interval", type=_positive_float, default=2.0, help="seconds between polls (2)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the smoke test; 0 when it passes, 1 (with the reason on stderr) when it does not."""
    args = build_parser().parse_args(argv)
    if args.racers > 1000:
        build_parser().error("--racers: at most 1000 (one leaderboard page)")
    started = time.monotonic()
    try:
        target = resolve_target(args)
        log(f"stack {target.stack_name} ({target.where()}): stream {target.stream_name}")
        log(f"API {target.api_url}")
        spec = send_race(target, args)
        board = wait_for_standings(LeaderboardApi(target.api_url), spec, args.timeout, args.poll_interval)
    except SmokeTestError as exc:
        print(f"smoke test FAILED: {exc}", file=sys.stderr, flush=True)
        if os.environ.get("GITHUB_ACTIONS") == "true":
            print(f"::error title=Smoke test failed::{exc}", flush=True)
        return 1
    leader = board["standings"][0]
    log(
        f"PASSED in {time.monotonic() - started:.0f} s: race {spec.race_id} final with {spec.racers} racers; "
        f"leader {leader['name']} (racer {leader['racerId']}) {leader['totalOutput']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
