"""The execution environments of one function: warm workers reused, capped by its concurrency."""

from __future__ import annotations

import random
import threading
import uuid
from typing import Any

from localcloud.invocation import InvocationResult, TooManyRequestsError
from localcloud.runtime.logs import FunctionLog
from localcloud.runtime.process import WorkerProcess, WorkerSettings
from localcloud.runtime.spec import FunctionSpec

# Request ids need to be unique, not secret: a generator seeded once costs no system call per id
# (uuid4 reads os.urandom each time, which under load also means waiting for the interpreter lock).
_IDS = random.Random()


def _request_id() -> str:
    """A random version-4 UUID, as AWS's request ids are."""
    return str(uuid.UUID(int=_IDS.getrandbits(128), version=4))


class PoolClosedError(RuntimeError):
    """The pool was retired (redeploy or stop) before the invocation got a worker."""


class FunctionPool:
    """Hands each invocation a warm worker, starting new ones up to the function's concurrency.

    Beyond it, ``invoke`` raises :class:`TooManyRequestsError` (Lambda's throttle), or, when
    ``queue_when_throttled`` is set, waits for a worker to come free.
    """

    def __init__(
        self,
        spec: FunctionSpec,
        settings: WorkerSettings,
        log: FunctionLog,
        queue_when_throttled: bool = False,
    ) -> None:
        self.spec = spec
        self._settings = settings
        self._log = log
        self._queue_when_throttled = queue_when_throttled
        self._idle: list[WorkerProcess] = []
        self._workers: set[WorkerProcess] = set()  # every started worker, idle or busy
        self._busy = 0
        self._closed = False
        self._condition = threading.Condition()
        self.cold_starts = 0

    @property
    def busy(self) -> int:
        """Invocations running now."""
        with self._condition:
            return self._busy

    @property
    def size(self) -> int:
        """Workers alive now (idle or busy)."""
        with self._condition:
            return self._busy + len(self._idle)

    def invoke(self, event: Any) -> InvocationResult:
        """Run one invocation on a warm or new worker."""
        request_id = _request_id()
        worker = self._acquire()
        try:
            if worker is None:
                worker, init_error = self._start_worker()
                if init_error is not None:
                    return self._init_failure(request_id, init_error)
            assert worker is not None
            return worker.invoke(event, request_id)
        finally:
            self._release(worker)

    def _acquire(self) -> WorkerProcess | None:
        """Reserve a slot; returns an idle worker, or None when the caller should start one."""
        with self._condition:
            while True:
                if self._closed:
                    raise PoolClosedError(f"function {self.spec.name} was redeployed or stopped")
                if self._idle:
                    self._busy += 1
                    return self._idle.pop()
                if self._busy < self.spec.max_concurrency:
                    self._busy += 1
                    return None
                if not self._queue_when_throttled:
                    limit = self.spec.max_concurrency
                    raise TooManyRequestsError(
                        f"Rate Exceeded: {self.spec.name} is at its concurrency limit ({limit})"
                    )
                self._condition.wait()

    def _start_worker(self) -> tuple[WorkerProcess | None, dict[str, Any] | None]:
        worker = WorkerProcess(self.spec, self._settings, self._log)
        self.cold_starts += 1
        init_error = worker.wait_ready()
        if init_error is not None:
            return None, init_error
        with self._condition:
            self._workers.add(worker)
        return worker, None

    def _init_failure(self, request_id: str, error: dict[str, Any]) -> InvocationResult:
        self._log.write_many(
            [f"START RequestId: {request_id} Version: $LATEST", f"END RequestId: {request_id}"],
        )
        return InvocationResult(
            request_id=request_id,
            payload=error,
            function_error="Unhandled",
            error_kind="init",
            log_tail=self._log.text()[-4096:],
        )

    def _release(self, worker: WorkerProcess | None) -> None:
        with self._condition:
            self._busy -= 1
            keep = worker is not None and worker.alive and not self._closed
            if not keep:
                self._workers.discard(worker)
            if keep:
                assert worker is not None
                self._idle.append(worker)
            self._condition.notify()
        if worker is not None and not keep:
            worker.kill() if not worker.alive else worker.stop()

    def worker_pids(self, busy_only: bool = False) -> list[int]:
        """Process ids of the live workers (only those running an invocation with ``busy_only``)."""
        with self._condition:
            idle = {id(worker) for worker in self._idle}
            return [w.pid for w in self._workers if w.alive and not (busy_only and id(w) in idle)]

    def close(self) -> None:
        """Stop idle workers now; busy ones stop when their invocation ends."""
        with self._condition:
            self._closed = True
            idle, self._idle = self._idle, []
            self._condition.notify_all()
        for worker in idle:
            worker.stop()
