"""Where an API request's time goes: per-stage timings under locust load, and a profile of the handler.

    .venv/bin/python bench/profile_api.py [--seconds N] [--route leaderboard|around|class] [--top N]

Starts the same stack and data as ``bench_api.py``, then

1. times each stage of the path inside this process while locust (its own process) drives load:
   the server's handler thread (``_WsgiBridge._run_app``: WSGI environ to answer), the gateway
   (``ApiGateway.handle``), the round trip to the Lambda worker (``WorkerProcess.invoke``) and the
   handler's own duration as the worker reports it; what the client saw minus the handler thread is
   the server's event loop, the hand-overs between threads and the client;
2. profiles the handler with cProfile, called in this process on a proxy event of the same route
   against the same moto (``--top`` rows by cumulative time).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import os
import pstats
import resource
import statistics
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_api
from bench_live import API_RACERS, local_stack, write_finished_race
from localcloud.apigateway import gateway
from localcloud.apigateway.server import ApiGatewayServer
from localcloud.runtime import LambdaRuntime, process
from localcloud.runtime.logs import FunctionLog

from leaderboard.adapters.dynamodb import DynamoRaceStore
from localcloud import httpserver

_STAGES: dict[str, list[float]] = defaultdict(list)
_LOCK = threading.Lock()


def _note(stage: str, ms: float) -> None:
    with _LOCK:
        _STAGES[stage].append(ms)


def _timed_method(owner: type, name: str, stage: str) -> Callable[[], None]:
    """Wrap ``owner.name`` to note its wall time under ``stage``; returns the undo."""
    original = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            _note(stage, (time.perf_counter() - started) * 1000)

    setattr(owner, name, wrapper)
    return lambda: setattr(owner, name, original)


def _note_handler_duration() -> Callable[[], None]:
    original = process.WorkerProcess.invoke

    def invoke(self: process.WorkerProcess, event: Any, request_id: str | None = None) -> Any:
        started = time.perf_counter()
        result = original(self, event, request_id)
        _note("3 worker round trip", (time.perf_counter() - started) * 1000)
        _note("4 handler (worker's own duration)", result.duration_ms)
        return result

    process.WorkerProcess.invoke = invoke  # type: ignore[method-assign]
    return lambda: setattr(process.WorkerProcess, "invoke", original)


_PROFILERS: list[cProfile.Profile] = []
_PROFILING = threading.Event()  # set while locust runs
_THREAD = threading.local()


def _profiled(owner: Any, name: str) -> Callable[[], None]:
    """cProfile every call of ``owner.name`` on whichever thread makes it (one profiler a thread)."""
    original = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not _PROFILING.is_set() or getattr(_THREAD, "active", False):  # off, or nested
            return original(*args, **kwargs)
        profiler = getattr(_THREAD, "profiler", None)
        if profiler is None:
            profiler = _THREAD.profiler = cProfile.Profile()
            with _LOCK:
                _PROFILERS.append(profiler)
        _THREAD.active = True
        profiler.enable()
        try:
            return original(*args, **kwargs)
        finally:
            profiler.disable()
            _THREAD.active = False

    setattr(owner, name, wrapper)
    return lambda: setattr(owner, name, original)


def _note_pipe_stages() -> Callable[[], None]:
    """Split the worker round trip: waiting for the answer on the pipe, then for the log's REPORT."""
    read_original = process.WorkerProcess._read_response
    tail_original = process.WorkerProcess._take_tail
    answered = threading.local()

    def read_response(self: process.WorkerProcess, deadline: float) -> Any:
        started = time.perf_counter()
        found = read_original(self, deadline)
        answered.at = time.perf_counter()
        _note("3a answer on the pipe (incl. handler)", (answered.at - started) * 1000)
        return found

    def take_tail(self: process.WorkerProcess) -> str:
        if getattr(answered, "at", None) is not None:
            _note("3b wait for the REPORT log line", (time.perf_counter() - answered.at) * 1000)
            answered.at = None
        return tail_original(self)

    process.WorkerProcess._read_response = read_response  # type: ignore[method-assign]
    process.WorkerProcess._take_tail = take_tail  # type: ignore[method-assign]

    def undo() -> None:
        process.WorkerProcess._read_response = read_original  # type: ignore[method-assign]
        process.WorkerProcess._take_tail = tail_original  # type: ignore[method-assign]

    return undo


def _api_worker_pids(stack: Any) -> list[int]:
    pools = [pool for pool in stack.cloud.runtime._pools.values() if "ApiFunction" in pool.spec.name]
    return [pid for pool in pools for pid in pool.worker_pids()]


def _cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds of these processes (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def _proxy_event(route: str, race_id: int, class_id: int) -> dict[str, Any]:
    """A REST (payload 1.0) proxy event for the route, as the local front door builds it."""
    if route == "leaderboard":
        resource, path = "/races/{raceId}/leaderboard", f"/races/{race_id}/leaderboard"
        params, query = {"raceId": str(race_id)}, {"limit": "100"}
    elif route == "around":
        resource, path = "/races/{raceId}/racers/{racerId}", f"/races/{race_id}/racers/77"
        params, query = {"raceId": str(race_id), "racerId": "77"}, {"around": "5"}
    else:
        resource, path = "/classes/{classId}/leaderboard", f"/classes/{class_id}/leaderboard"
        params, query = {"classId": str(class_id)}, {"limit": "100"}
    return {
        "resource": resource,
        "path": path,
        "httpMethod": "GET",
        "headers": {"Host": "127.0.0.1", "Accept": "*/*"},
        "multiValueHeaders": {"Host": ["127.0.0.1"], "Accept": ["*/*"]},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()},
        "pathParameters": params,
        "stageVariables": None,
        "body": None,
        "isBase64Encoded": False,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": "GET",
            "path": f"/Prod{path}",
            "stage": "Prod",
            "requestId": "profile",
            "requestTimeEpoch": int(time.time() * 1000),
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": "127.0.0.1",
            "identity": {"sourceIp": "127.0.0.1"},
        },
    }


class _Context:
    function_name = "ApiFunction"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:ApiFunction"
    memory_limit_in_mb = 512
    aws_request_id = "profile"
    log_group_name = "/aws/lambda/ApiFunction"
    log_stream_name = "profile"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def profile_handler(stack: Any, route: str, race_id: int, class_id: int, calls: int, top: int) -> None:
    """cProfile the API handler in this process (same code, same moto) on ``calls`` warm requests."""
    outputs = stack.stacks["alleycat"].outputs
    function = next(
        f for f in stack.cloud.client("lambda").list_functions()["Functions"] if "Api" in f["FunctionName"]
    )
    os.environ.update(function.get("Environment", {}).get("Variables", {}))
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": stack.cloud.endpoint_url,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "TABLE_NAME": outputs["TableName"],
            "POWERTOOLS_METRICS_NAMESPACE": "Alleycat",
        }
    )
    from leaderboard.api import handler  # noqa: PLC0415 - after the environment is set

    event = _proxy_event(route, race_id, class_id)
    for _ in range(3):
        answer = handler.lambda_handler(event, _Context())
        assert answer["statusCode"] == 200, answer
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    for _ in range(calls):
        handler.lambda_handler(event, _Context())
    profiler.disable()
    per_call = (time.perf_counter() - started) * 1000 / calls
    print(f"\nhandler in process, {route}: {per_call:.2f} ms a call under the profiler ({calls} calls)")
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(top)


def main() -> None:
    """Print the stage timings and the handler's profile."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--route", default="leaderboard", choices=bench_api.ROUTES)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--profile-threads", action="store_true", help="cProfile localcloud's threads")
    parser.add_argument(
        "--switch-interval-ms", type=float, default=None, help="this process's GIL switch interval"
    )
    args = parser.parse_args()
    locust = bench_api.locust_command()
    if locust is None:
        print("locust is not installed")
        return
    undo = [
        _timed_method(httpserver._WsgiBridge, "_run_app", "1 server handler thread"),
        _timed_method(gateway.ApiGateway, "handle", "2 gateway"),
        _note_handler_duration(),
        _note_pipe_stages(),
    ]
    if args.profile_threads:
        # The handler threads (bridge, gateway, event), the invoking threads (runtime, pipe) and
        # the log readers' writes; the event loop's own work is not covered.
        undo += [
            _profiled(ApiGatewayServer, "wsgi_app"),
            _profiled(LambdaRuntime, "invoke"),
            _profiled(FunctionLog, "write_many"),
        ]
    if args.switch_interval_ms is not None:
        sys.setswitchinterval(args.switch_interval_ms / 1000)
    with local_stack() as stack:
        outputs = stack.stacks["alleycat"].outputs
        assert stack.cloud is not None
        race_id = write_finished_race(stack, API_RACERS)
        base_url = outputs["ApiUrl"]
        class_id = int(str(bench_api._get(f"{base_url}/races/{race_id}/leaderboard?limit=1")["classId"]))
        bench_api.seed_class_bests(
            DynamoRaceStore(stack.cloud.client("dynamodb"), outputs["TableName"]), class_id, race_id, 300
        )
        bench_api.warm_up(base_url, race_id, class_id)
        _STAGES.clear()
        env = {
            "API_BENCH_RACE": str(race_id),
            "API_BENCH_RACERS": str(API_RACERS),
            "API_BENCH_CLASS": str(class_id),
        }
        workers = _api_worker_pids(stack)
        cpu_before = (os.times(), _cpu_s(workers), resource.getrusage(resource.RUSAGE_CHILDREN))
        _PROFILING.set()
        good, failed, _ = bench_api.run_locust(locust, base_url, args.route, args.seconds, env)
        _PROFILING.clear()
        cpu_after = (os.times(), _cpu_s(workers), resource.getrusage(resource.RUSAGE_CHILDREN))
        for restore in undo:
            restore()
        print(f"\n{args.route}: {len(good)} answers, {failed} failed, {bench_api.CLIENTS} locust clients")
        rows = [("0 client (locust)", good), *sorted(_STAGES.items())]
        for stage, samples in rows:
            print(
                f"  {stage:<36} mean {statistics.fmean(samples):7.2f}  p50 {statistics.median(samples):7.2f}"
                f"  p99 {statistics.quantiles(samples, n=100)[98]:7.2f} ms  ({len(samples)})"
            )
        answers = len(good) + failed
        this = (cpu_after[0].user + cpu_after[0].system - cpu_before[0].user - cpu_before[0].system) * 1000
        locust_ms = (
            cpu_after[2].ru_utime + cpu_after[2].ru_stime - cpu_before[2].ru_utime - cpu_before[2].ru_stime
        ) * 1000
        print(f"  CPU per request ({len(workers)} workers):")
        print(f"    localcloud process (front door, runtime, moto) {this / answers:6.2f} ms")
        workers_ms = (cpu_after[1] - cpu_before[1]) * 1000
        print(f"    API function workers                          {workers_ms / answers:6.2f} ms")
        print(f"    locust (start-up included)                    {locust_ms / answers:6.2f} ms")
        if _PROFILERS:
            stats = pstats.Stats(_PROFILERS[0])
            for more in _PROFILERS[1:]:
                stats.add(more)
            print("\nlocalcloud's threads, by own time:")
            stats.sort_stats("tottime").print_stats(args.top)
        profile_handler(stack, args.route, race_id, class_id, args.calls, args.top)


if __name__ == "__main__":
    main()
