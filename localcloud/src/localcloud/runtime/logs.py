"""Each function's log: a file under the state folder, a ring buffer, and CloudWatch Logs in moto."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import IO

from localcloud.aws import ACCOUNT_ID

LOG = logging.getLogger(__name__)


class CloudWatchLogsSink:
    """Appends a function's log lines to moto's CloudWatch Logs (``/aws/lambda/<name>``) in-process."""

    def __init__(self, region: str) -> None:
        self.region = region
        self._known_streams: set[tuple[str, str]] = set()

    def put(self, group: str, stream: str, lines: list[str]) -> None:
        """Write ``lines`` as log events; creates the group and stream on first use."""
        if not lines:
            return
        try:
            from moto.logs.models import logs_backends  # noqa: PLC0415 - keeps the runtime cheap to import

            backend = logs_backends[ACCOUNT_ID][self.region]
            if (group, stream) not in self._known_streams:
                if group not in backend.groups:
                    backend.create_log_group(group, {})
                if stream not in backend.groups[group].streams:
                    backend.create_log_stream(group, stream)
                self._known_streams.add((group, stream))
            now_ms = int(time.time() * 1000)
            backend.put_log_events(group, stream, [{"timestamp": now_ms, "message": line} for line in lines])
        except Exception:  # logs are a convenience; never let them break an invocation
            LOG.debug("could not copy logs to CloudWatch Logs", exc_info=True)
            self._known_streams.discard((group, stream))


class FunctionLog:
    """Everything one function wrote, plus Lambda's START / END / REPORT lines."""

    def __init__(
        self,
        function_name: str,
        path: Path | None = None,
        capacity: int = 5000,
        sink: CloudWatchLogsSink | None = None,
        listener: Callable[[str, list[str]], None] | None = None,
    ) -> None:
        self.function_name = function_name
        # Called with (function name, lines) after each write, e.g. to extract embedded metrics.
        self._listener = listener
        self.path = path
        self._lines: deque[str] = deque(maxlen=capacity)
        self._lock = threading.Lock()
        self._file: IO[str] | None = None
        self._sink = sink
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("a", encoding="utf-8", buffering=1)

    def write(self, line: str, stream_name: str | None = None) -> None:
        """Append one line (without its newline)."""
        self.write_many([line], stream_name)

    def write_many(self, lines: list[str], stream_name: str | None = None) -> None:
        """Append lines; ``stream_name`` also copies them to that CloudWatch Logs stream."""
        with self._lock:
            self._lines.extend(lines)
            if self._file is not None:
                self._file.write("".join(f"{line}\n" for line in lines))
        if self._sink is not None and stream_name is not None:
            self._sink.put(f"/aws/lambda/{self.function_name}", stream_name, lines)
        if self._listener is not None:
            try:
                self._listener(self.function_name, lines)
            except Exception:  # an observer must never break an invocation
                LOG.debug("a log listener failed", exc_info=True)

    def lines(self) -> list[str]:
        """The most recent lines, oldest first."""
        with self._lock:
            return list(self._lines)

    def text(self) -> str:
        """The most recent lines joined."""
        return "\n".join(self.lines())

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
