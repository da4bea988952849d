"""The process one Lambda execution environment runs in (started as a script, not imported).

It deliberately imports only the standard library: it starts fast and knows nothing of localcloud.

Protocol, one JSON document per line:
  parent → worker (request fd):  {"id", "event", "deadline_ms", "arn"}
  worker → parent (response fd): {"ready": true, "init_ms"} | {"init_error": {...}}   once at start
                                 {"id", "ok": true, "payload"} | {"id", "ok": false, "error": {...}}
The handler's stdout and stderr are the worker's own, which the parent reads as the function log;
the worker also writes Lambda's START / END / REPORT lines there so they interleave correctly.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import json
import os
import random
import resource
import sys
import sysconfig
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any


class LambdaContext:
    """The context object handed to handlers, with the fields and method Lambda's Python runtime has."""

    def __init__(self, request_id: str, deadline_ms: int, invoked_function_arn: str) -> None:
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.invoked_function_arn = invoked_function_arn
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.aws_request_id = request_id
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = None
        self.client_context = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the function's timeout."""
        return max(0, self._deadline_ms - int(time.time() * 1000))


def _error_object(exc: BaseException, request_id: str | None = None) -> dict[str, Any]:
    frames = traceback.extract_tb(exc.__traceback__)
    error: dict[str, Any] = {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "stackTrace": [line for line in traceback.format_list(frames)],
    }
    if request_id is not None:
        error["requestId"] = request_id
    return error


def _load_handler(handler_spec: str) -> Any:
    module_path, _, function_name = handler_spec.rpartition(".")
    if not module_path:
        raise _InitError("Runtime.MalformedHandlerName", f"Bad handler '{handler_spec}': not enough values")
    module_name = module_path.replace("/", ".")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise _InitError(
            "Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}"
        ) from exc
    handler = getattr(module, function_name, None)
    if handler is None:
        raise _InitError(
            "Runtime.HandlerNotFound", f"Handler '{function_name}' missing on module '{module_name}'"
        )
    return handler


class _InitError(Exception):
    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


# Trace ids need to be unique, not secret: no system call per invocation (os.urandom is one).
_IDS = random.Random()


def _trace_header() -> str:
    trace_id = f"1-{int(time.time()):08x}-{_IDS.getrandbits(96):024x}"
    return f"Root={trace_id};Parent={_IDS.getrandbits(64):016x};Sampled=0"


def _max_memory_mb() -> int:
    # VmHWM is this process's own peak; ru_maxrss can carry the parent's peak across fork + exec.
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def _write(stream: Any, payload: dict[str, Any]) -> None:
    _write_line(stream, json.dumps(payload, separators=(",", ":")).encode())


def _write_line(stream: Any, line: bytes) -> None:
    # One write of the whole line: the parent wakes once, with the answer complete.
    stream.write(line + b"\n")
    stream.flush()


def _run(request_fd: int, response_fd: int) -> None:
    requests = os.fdopen(request_fd, "rb")
    responses = os.fdopen(response_fd, "wb")
    memory_size = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
    init_started = time.perf_counter()
    try:
        handler = _load_handler(os.environ["_HANDLER"])
    except _InitError as exc:
        print(f"[ERROR] {exc.error_type}: {exc}", file=sys.stderr, flush=True)
        _write(responses, {"init_error": {"errorMessage": str(exc), "errorType": exc.error_type}})
        return
    except BaseException as exc:  # an import that exits or raises anything else is an init failure too
        traceback.print_exc()
        _write(responses, {"init_error": _error_object(exc)})
        return
    init_ms = (time.perf_counter() - init_started) * 1000
    _write(responses, {"ready": True, "init_ms": init_ms})

    first = True
    for line in requests:
        request = json.loads(line)
        request_id = request["id"]
        context = LambdaContext(request_id, request["deadline_ms"], request["arn"])
        # Lambda sets a fresh trace header per invocation; unsampled, so X-Ray SDKs send nothing.
        os.environ["_X_AMZN_TRACE_ID"] = _trace_header()
        print(f"START RequestId: {request_id} Version: $LATEST", flush=True)
        started = time.perf_counter()
        response: dict[str, Any]
        # The payload as JSON, spliced into the answer as it is (not decoded and encoded again).
        encoded_ok: str | None = None
        try:
            result = handler(request["event"], context)
            try:
                encoded_ok = json.dumps(result, separators=(",", ":"))
            except (TypeError, ValueError) as exc:
                response = {
                    "id": request_id,
                    "ok": False,
                    "error": {
                        "errorMessage": f"Unable to marshal response: {exc}",
                        "errorType": "Runtime.MarshalError",
                        "requestId": request_id,
                        "stackTrace": [],
                    },
                }
            else:
                response = {"id": request_id, "ok": True}
        except SystemExit as exc:
            # Lambda sees the runtime process exit: report it as a crash by exiting for real.
            sys.stdout.flush()
            sys.stderr.flush()
            code = exc.code if isinstance(exc.code, int) else 1
            os._exit(code)
        except Exception as exc:
            error = _error_object(exc, request_id)
            print(f"[ERROR] {error['errorType']}: {error['errorMessage']}", file=sys.stderr)
            traceback.print_exc()
            sys.stderr.flush()
            response = {"id": request_id, "ok": False, "error": error}
        duration_ms = (time.perf_counter() - started) * 1000
        billed = max(1, int(-(-duration_ms // 1)))
        init_part = f"\tInit Duration: {init_ms:.2f} ms" if first else ""
        first = False
        sys.stdout.flush()
        sys.stderr.flush()
        # END and REPORT in one write: the parent's log reader wakes once for both.
        print(
            f"END RequestId: {request_id}\n"
            f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\tBilled Duration: {billed} ms\t"
            f"Memory Size: {memory_size} MB\tMax Memory Used: {_max_memory_mb()} MB{init_part}",
            flush=True,
        )
        response["duration_ms"] = duration_ms
        answer = json.dumps(response, separators=(",", ":"))
        if encoded_ok is not None:
            answer = f'{answer[:-1]},"payload":{encoded_ok}}}'
        _write_line(responses, answer.encode())


def _tag_runs_here(tag: str) -> bool:
    """Whether a wheel tag (``cp312-cp312-manylinux2014_aarch64``, ``py3-none-any``) suits this Python."""
    python, _, rest = tag.partition("-")
    abi, _, platforms = rest.partition("-")
    here = f"cp{sys.version_info.major}{sys.version_info.minor}"
    if abi not in ("none", "abi3", here):
        return False
    # abi3 wheels need at least the CPython they name (cp312-abi3 does not run on 3.11).
    if abi == "abi3" and python.startswith("cp3") and int(python[3:] or 0) > sys.version_info.minor:
        return False
    if platforms == "any":
        return True
    # e.g. linux-x86_64 → "x86_64"; a platform tag names the machine last (manylinux_2_17_x86_64).
    machine = sysconfig.get_platform().replace("-", "_").replace(".", "_").rsplit("_", 1)[-1]
    system = sys.platform.rstrip("0123456789")  # "linux", "darwin", "win"
    prefixes = {"linux": ("linux", "manylinux", "musllinux"), "darwin": ("macosx",), "win": ("win",)}
    return any(
        platform.startswith(prefixes.get(system, (system,)))
        and (platform.endswith(machine) or platform.endswith("universal2"))
        for platform in platforms.split(".")
    )


def _bundled_distributions(code_dir: Path) -> tuple[set[str], bool]:
    """The top-level names the code folder's bundled distributions install, and whether any of
    them was built for another platform or Python (``sam build`` for arm64 / python3.12, say)."""
    names: set[str] = set()
    foreign = False
    for dist_info in code_dir.glob("*.dist-info"):
        try:
            wheel = (dist_info / "WHEEL").read_text(encoding="utf-8")
            record = (dist_info / "RECORD").read_text(encoding="utf-8")
        except OSError:
            continue
        tags = [line.split(":", 1)[1].strip() for line in wheel.splitlines() if line.startswith("Tag:")]
        if tags and not any(_tag_runs_here(tag) for tag in tags):
            foreign = True
        for line in record.splitlines():
            top = line.split(",", 1)[0].split("/", 1)[0]
            if top and not top.endswith((".dist-info", ".data")) and top not in ("..", "bin", "__pycache__"):
                names.add(top.split(".", 1)[0])
    return names, foreign


class _EnvironmentFirst(importlib.abc.MetaPathFinder):
    """Finds the named top-level packages on sys.path without the code folder (in the worker's own
    environment), falling back to the normal search (the code folder) when the environment has none."""

    def __init__(self, names: set[str], code_dir: str) -> None:
        self.names = frozenset(names)
        self.code_dir = os.path.abspath(code_dir)

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if path is not None or fullname not in self.names:
            return None  # submodules follow their package's __path__, wherever the package came from
        elsewhere = [entry for entry in sys.path if os.path.abspath(entry or ".") != self.code_dir]
        return importlib.machinery.PathFinder.find_spec(fullname, elsewhere)


def _prefer_environment_for_foreign_bundles(code_dir: str) -> None:
    """A code folder that bundles distributions built for another platform or Python (the Lambda
    artifact ``sam build`` makes for arm64 / python3.12) cannot import their native modules here.
    Then the function's own modules still come from the folder, but every bundled distribution is
    taken from the worker's environment (all of them, so pydantic and pydantic_core, say, always
    match); a bundle that runs here is used as it is, as on Lambda."""
    names, foreign = _bundled_distributions(Path(code_dir))
    if foreign and names:
        sys.meta_path.insert(0, _EnvironmentFirst(names, code_dir))


def main() -> None:
    """Entry point: ``python worker.py <request fd> <response fd> <code dir>``."""
    request_fd, response_fd, code_dir = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    # The script's own folder must not shadow the function's modules; the code folder comes first.
    sys.path[0] = code_dir
    os.chdir(code_dir)
    _prefer_environment_for_foreign_bundles(code_dir)
    _run(request_fd, response_fd)


if __name__ == "__main__":
    main()
