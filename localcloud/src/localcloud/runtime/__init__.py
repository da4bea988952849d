"""A Lambda runtime without Docker: each function's handler runs in its own warm worker processes."""

from __future__ import annotations

import logging
import tempfile
import threading
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from localcloud.aws import DEFAULT_REGION, FAKE_ACCESS_KEY_ID, FAKE_SECRET_ACCESS_KEY
from localcloud.invocation import InvocationResult, TooManyRequestsError
from localcloud.runtime.catalog import FunctionCatalog
from localcloud.runtime.logs import CloudWatchLogsSink, FunctionLog
from localcloud.runtime.pool import FunctionPool, PoolClosedError
from localcloud.runtime.process import WorkerSettings
from localcloud.runtime.spec import DEFAULT_MAX_CONCURRENCY, FunctionSpec

__all__ = ["DEFAULT_MAX_CONCURRENCY", "FunctionLog", "FunctionSpec", "InvocationObserver", "LambdaRuntime"]

LOG = logging.getLogger(__name__)


class InvocationObserver(Protocol):
    """Told about every invocation and every log line (e.g. to publish Lambda's metrics).

    Per invocation: ``invocation_started``, then ``invocation_throttled`` if the function was at its
    concurrency limit, then always ``invocation_finished`` (``result`` is None when it did not run).
    Calls come from the invoking threads and must be quick.
    """

    def invocation_started(self, function_name: str) -> None:
        """An invocation of ``function_name`` is about to run."""

    def invocation_throttled(self, function_name: str) -> None:
        """The invocation was refused (TooManyRequestsError)."""

    def invocation_finished(self, function_name: str, result: InvocationResult | None) -> None:
        """The invocation ended with ``result`` (None: it never ran)."""

    def log_lines(self, function_name: str, lines: list[str]) -> None:
        """The function's log received ``lines``."""


class LambdaRuntime:
    """Implements :class:`localcloud.invocation.Invoker` for every function deployed in moto.

    Configuration is read from moto on each invocation (cheaply, in-process); when a function's
    configuration or code changes its workers are replaced, so redeploys take effect at once.
    """

    def __init__(
        self,
        endpoint_url: str,
        region: str = DEFAULT_REGION,
        state_dir: Path | None = None,
        queue_when_throttled: bool = False,
        copy_logs_to_cloudwatch: bool = True,
    ) -> None:
        self.endpoint_url = endpoint_url
        self.region = region
        self._state_dir = state_dir
        self._scratch = tempfile.TemporaryDirectory(prefix="localcloud-code-") if state_dir is None else None
        base = state_dir if state_dir is not None else Path(self._scratch.name)  # type: ignore[union-attr]
        self._logs_dir = state_dir / "logs" if state_dir is not None else None
        self.catalog = FunctionCatalog(region, base / "unpacked")
        self._settings = WorkerSettings(
            endpoint_url=endpoint_url,
            region=region,
            access_key_id=FAKE_ACCESS_KEY_ID,
            secret_access_key=FAKE_SECRET_ACCESS_KEY,
        )
        self._queue_when_throttled = queue_when_throttled
        self._sink = CloudWatchLogsSink(region) if copy_logs_to_cloudwatch else None
        self._pools: dict[str, FunctionPool] = {}
        self._logs: dict[str, FunctionLog] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._observers: tuple[InvocationObserver, ...] = ()

    def add_observer(self, observer: InvocationObserver) -> None:
        """Tell ``observer`` about every invocation and log line from now on."""
        with self._lock:
            self._observers = (*self._observers, observer)

    def remove_observer(self, observer: InvocationObserver) -> None:
        """Undo :meth:`add_observer`."""
        with self._lock:
            self._observers = tuple(o for o in self._observers if o is not observer)

    def _notify(self, event: str, *args: Any) -> None:
        for observer in self._observers:
            try:
                getattr(observer, event)(*args)
            except Exception:  # an observer must never break an invocation
                LOG.debug("invocation observer %r failed on %s", observer, event, exc_info=True)

    def _log_lines(self, function_name: str, lines: list[str]) -> None:
        if self._observers:
            self._notify("log_lines", function_name, lines)

    def register_code_dirs(self, code_dirs: Iterable[tuple[str, Path]]) -> None:
        """Tell the runtime where each function's handler lives (function name → folder)."""
        self.catalog.register_code_dirs(code_dirs)

    def add_environment(self, variables: Mapping[str, str]) -> None:
        """Give every function's workers these variables too (after the function's own).

        For other local servers, e.g. ``AWS_ENDPOINT_URL_IOT_DATA_PLANE``. Workers are replaced.
        """
        with self._lock:
            merged = dict(self._settings.extra_environment)
            merged.update({str(k): str(v) for k, v in variables.items()})
            self._settings = replace(self._settings, extra_environment=tuple(sorted(merged.items())))
        self.recycle()

    def invoke(self, function: str, event: Any) -> InvocationResult:
        """Invoke ``function`` (name or ARN) synchronously with ``event``."""
        for _ in range(3):
            spec = self.catalog.lookup(function)
            result: InvocationResult | None = None
            self._notify("invocation_started", spec.name)
            try:
                result = self._pool_for(spec).invoke(event)
                return result
            except PoolClosedError:
                # A redeploy retired the pool between lookup and start: look the function up again.
                continue
            except TooManyRequestsError:
                self._notify("invocation_throttled", spec.name)
                raise
            finally:
                self._notify("invocation_finished", spec.name, result)
        raise RuntimeError(f"{function} keeps being redeployed or the runtime is stopping")

    def _pool_for(self, spec: FunctionSpec) -> FunctionPool:
        retired: FunctionPool | None = None
        with self._lock:
            if self._closed:
                raise RuntimeError("the Lambda runtime is stopped")
            pool = self._pools.get(spec.name)
            if pool is None or pool.spec != spec:
                retired = pool
                pool = FunctionPool(
                    spec, self._settings, self._log_for(spec.name), self._queue_when_throttled
                )
                self._pools[spec.name] = pool
        if retired is not None:
            retired.close()
        return pool

    def _log_for(self, function_name: str) -> FunctionLog:
        log = self._logs.get(function_name)
        if log is None:
            path = self._logs_dir / f"{function_name}.log" if self._logs_dir is not None else None
            log = FunctionLog(function_name, path, sink=self._sink, listener=self._log_lines)
            self._logs[function_name] = log
        return log

    def log(self, function: str) -> FunctionLog:
        """The log of ``function`` (name or ARN), START / END / REPORT lines included."""
        name = self.catalog.lookup(function).name
        with self._lock:
            return self._log_for(name)

    def pool(self, function: str) -> FunctionPool | None:
        """The live worker pool of ``function``, if it has been invoked."""
        name = self.catalog.lookup(function).name
        with self._lock:
            return self._pools.get(name)

    def recycle(self) -> None:
        """Replace every function's workers on next use (after a deploy changed code on disk)."""
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()

    def stop(self) -> None:
        """Stop every worker and close the logs."""
        with self._lock:
            self._closed = True
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()
        for log in self._logs.values():
            log.close()
        if self._scratch is not None:
            self._scratch.cleanup()
