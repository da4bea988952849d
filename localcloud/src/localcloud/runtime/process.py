"""One execution environment: a worker process running a function's handler, seen from localcloud.

Requests and responses travel as JSON lines over two dedicated pipes; the worker's stdout and
stderr are a third pipe, read by a thread into the function's log. A handler that times out is
killed; one that crashes or exits just ends the process. Either way the worker is then dead and
its pool replaces it on the next invocation.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from localcloud.invocation import InvocationResult
from localcloud.runtime.logs import FunctionLog
from localcloud.runtime.spec import FunctionSpec

WORKER_SCRIPT = Path(__file__).with_name("worker.py")
# Lambda gives the init phase 10 s; a generous bound keeps a hung import from hanging localcloud.
INIT_TIMEOUT_S = 30.0
_TAIL_BYTES = 4096
# Variables a worker inherits from localcloud's own environment; everything else is the function's.
_INHERITED = ("PATH", "LANG", "LC_ALL", "LD_LIBRARY_PATH", "PYTHONPATH", "SYSTEMROOT", "TMPDIR")


@dataclass(frozen=True)
class WorkerSettings:
    """What every worker needs besides its function's spec."""

    endpoint_url: str
    region: str
    access_key_id: str
    secret_access_key: str
    # Variables other local servers add for every function (e.g. a service-specific endpoint).
    extra_environment: tuple[tuple[str, str], ...] = ()


def lambda_environment(spec: FunctionSpec, settings: WorkerSettings, log_stream: str) -> dict[str, str]:
    """The environment of a function's worker: inherited basics, the function's own, then Lambda's."""
    env = {key: os.environ[key] for key in _INHERITED if key in os.environ}
    env.update(dict(spec.environment))
    env.update(dict(settings.extra_environment))
    env.update(
        {
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(int(spec.timeout_s)),
            "AWS_LAMBDA_LOG_GROUP_NAME": spec.log_group_name,
            "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
            "AWS_REGION": settings.region,
            "AWS_DEFAULT_REGION": settings.region,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime or 'python3'}",
            "_HANDLER": spec.handler,
            "LAMBDA_TASK_ROOT": str(spec.code_dir),
            "LAMBDA_RUNTIME_DIR": str(WORKER_SCRIPT.parent),
            "AWS_ACCESS_KEY_ID": settings.access_key_id,
            "AWS_SECRET_ACCESS_KEY": settings.secret_access_key,
            "AWS_SESSION_TOKEN": "localcloud",
            # botocore honours this, so boto3 inside handlers reaches the local endpoint unchanged.
            "AWS_ENDPOINT_URL": settings.endpoint_url,
            "TZ": ":UTC",
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    if spec.layer_paths:
        # After the code folder (the worker puts it first), before everything else, as on Lambda.
        inherited = [env["PYTHONPATH"]] if env.get("PYTHONPATH") else []
        env["PYTHONPATH"] = os.pathsep.join([*(str(path) for path in spec.layer_paths), *inherited])
    return env


def _log_stream_name() -> str:
    return f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"


def _exit_description(returncode: int | None) -> str:
    if returncode is None:
        return "exit status unknown"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        readable = {"SIGSEGV": "segmentation fault", "SIGKILL": "killed", "SIGABRT": "aborted"}.get(
            name, name
        )
        return f"signal: {readable}"
    return f"exit status {returncode}"


class WorkerProcess:
    """A live worker for one function; ``invoke`` is not re-entrant (the pool hands it to one caller)."""

    def __init__(self, spec: FunctionSpec, settings: WorkerSettings, log: FunctionLog) -> None:
        self.spec = spec
        self.log = log
        self.log_stream = _log_stream_name()
        self.alive = False
        self.init_ms = 0.0
        self._tail: list[str] = []
        self._tail_request: str | None = None
        self._report_seen = threading.Event()
        self._pending_lines: list[str] = []
        request_read, self._request_write = os.pipe()
        self._response_read, response_write = os.pipe()
        try:
            self._process = subprocess.Popen(
                [
                    sys.executable,
                    "-u",
                    str(WORKER_SCRIPT),
                    str(request_read),
                    str(response_write),
                    str(spec.code_dir),
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                pass_fds=(request_read, response_write),
                env=lambda_environment(spec, settings, self.log_stream),
                cwd=str(spec.code_dir),
                start_new_session=True,
            )
        finally:
            os.close(request_read)
            os.close(response_write)
        self._requests: IO[bytes] = os.fdopen(self._request_write, "wb")
        self._responses: IO[bytes] = os.fdopen(self._response_read, "rb")
        self._reader = threading.Thread(target=self._read_output, name=f"log-{spec.name}", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        """The worker's process id (e.g. for fault injection: kill it mid-invocation)."""
        return self._process.pid

    # -- start-up -------------------------------------------------------------------------------
    def wait_ready(self) -> dict[str, Any] | None:
        """Wait for the handler module to load; returns Lambda's init error object, or None when ready."""
        message = self._read_response(time.monotonic() + INIT_TIMEOUT_S)
        if message is None:
            self.kill()
            return {
                "errorMessage": f"Runtime exited during init: {_exit_description(self._process.poll())}",
                "errorType": "Runtime.ExitError",
            }
        if "init_error" in message:
            self.kill()
            error: dict[str, Any] = message["init_error"]
            return error
        self.init_ms = float(message.get("init_ms", 0.0))
        self.alive = True
        return None

    # -- invocation -----------------------------------------------------------------------------
    def invoke(self, event: Any, request_id: str | None = None) -> InvocationResult:
        """Run one invocation; a timeout or crash marks the worker dead and reports a function error."""
        request_id = request_id or str(uuid.uuid4())
        started = time.monotonic()
        deadline = started + self.spec.timeout_s
        self._report_seen.clear()
        message = {
            "id": request_id,
            "event": event,
            "deadline_ms": int(time.time() * 1000 + self.spec.timeout_s * 1000),
            "arn": self.spec.arn,
        }
        try:
            self._requests.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")
            self._requests.flush()
        except (BrokenPipeError, OSError):
            return self._crashed(request_id, started)
        response = self._read_response(deadline)
        if response is None:
            if time.monotonic() >= deadline and self._process.poll() is None:
                return self._timed_out(request_id, started)
            return self._crashed(request_id, started)
        duration_ms = float(response.get("duration_ms", (time.monotonic() - started) * 1000))
        # The worker wrote REPORT before answering; let the reader catch up so the tail is complete.
        self._report_seen.wait(1.0)
        tail = self._take_tail()
        billed = max(1, int(-(-duration_ms // 1)))
        if response.get("ok"):
            return InvocationResult(
                request_id=request_id,
                payload=response.get("payload"),
                duration_ms=duration_ms,
                billed_duration_ms=billed,
                log_tail=tail,
            )
        return InvocationResult(
            request_id=request_id,
            payload=response.get("error"),
            function_error="Unhandled",
            duration_ms=duration_ms,
            billed_duration_ms=billed,
            error_kind="exception",
            log_tail=tail,
        )

    def _read_response(self, deadline: float) -> dict[str, Any] | None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        readable, _, _ = select.select([self._responses], [], [], remaining)
        if not readable:
            return None
        line = self._responses.readline()
        if not line.endswith(b"\n"):
            return None
        parsed: dict[str, Any] = json.loads(line)
        return parsed

    def _timed_out(self, request_id: str, started: float) -> InvocationResult:
        self.kill()
        duration_ms = (time.monotonic() - started) * 1000
        seconds = f"{self.spec.timeout_s:.2f}"
        timestamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        self.log.write_many(
            [
                f"{timestamp} {request_id} Task timed out after {seconds} seconds",
                f"END RequestId: {request_id}",
                self._report_line(request_id, duration_ms, "timeout"),
            ],
            self.log_stream,
        )
        return InvocationResult(
            request_id=request_id,
            payload={
                "errorMessage": f"RequestId: {request_id} Error: Task timed out after {seconds} seconds",
                "errorType": "Sandbox.Timedout",
            },
            function_error="Unhandled",
            duration_ms=duration_ms,
            billed_duration_ms=int(self.spec.timeout_s * 1000),
            error_kind="timeout",
            log_tail=self._take_tail(),
        )

    def _crashed(self, request_id: str, started: float) -> InvocationResult:
        returncode = self._wait_exit()
        self.alive = False
        self._reader.join(timeout=1.0)
        duration_ms = (time.monotonic() - started) * 1000
        description = _exit_description(returncode)
        self.log.write_many(
            [
                f"RequestId: {request_id} Error: Runtime exited with error: {description}",
                "Runtime.ExitError",
                f"END RequestId: {request_id}",
                self._report_line(request_id, duration_ms, "error\tError Type: Runtime.ExitError"),
            ],
            self.log_stream,
        )
        return InvocationResult(
            request_id=request_id,
            payload={
                "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: {description}",
                "errorType": "Runtime.ExitError",
            },
            function_error="Unhandled",
            duration_ms=duration_ms,
            billed_duration_ms=max(1, int(duration_ms)),
            error_kind="crash",
            log_tail=self._take_tail(),
        )

    def _report_line(self, request_id: str, duration_ms: float, status: str) -> str:
        return (
            f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
            f"Billed Duration: {max(1, int(duration_ms))} ms\tMemory Size: {self.spec.memory_mb} MB\t"
            f"Max Memory Used: 0 MB\tStatus: {status}"
        )

    # -- the function's output ------------------------------------------------------------------
    def _read_output(self) -> None:
        stdout = self._process.stdout
        assert stdout is not None
        for raw in stdout:
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            self._pending_lines.append(line)
            if line.startswith("START RequestId: "):
                self._tail = [line]
            else:
                self._tail.append(line)
            # Flush to the log per request (or per line outside requests) to keep the hot path cheap.
            if line.startswith("REPORT RequestId: ") or not self._in_request():
                self.log.write_many(self._pending_lines, self.log_stream)
                self._pending_lines = []
            if line.startswith("REPORT RequestId: "):
                self._report_seen.set()
        if self._pending_lines:
            self.log.write_many(self._pending_lines, self.log_stream)
            self._pending_lines = []

    def _in_request(self) -> bool:
        return bool(self._tail) and self._tail[0].startswith("START RequestId: ")

    def _take_tail(self) -> str:
        text = "\n".join(self._tail)
        self._tail = []
        return text[-_TAIL_BYTES:]

    # -- shutdown -------------------------------------------------------------------------------
    def _wait_exit(self) -> int | None:
        try:
            return self._process.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            self.kill()
            return self._process.poll()

    def kill(self) -> None:
        """End the worker at once (SIGKILL to its process group, so its children go too)."""
        self.alive = False
        if self._process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait(timeout=5.0)
        self._reader.join(timeout=1.0)
        self._close_pipes()

    def stop(self) -> None:
        """End the worker gracefully: closing its request pipe makes it exit."""
        if self._process.poll() is None:
            with contextlib.suppress(OSError):
                self._requests.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=2.0)
        self.kill()

    def _close_pipes(self) -> None:
        for stream in (self._requests, self._responses, self._process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
