"""Fault injection for localcloud: a WSGI middleware that makes AWS API calls fail the way AWS does.

Install a :class:`FaultInjector` once with ``cloud.add_middleware(injector)``, then add and remove
rules while the cloud runs. Every rule names a service (as signed in SigV4: DynamoDB Streams signs
as ``dynamodb``) and optionally operations, a share of calls (``rate``), a cap on injections
(``limit``), a lifetime (``duration_s``) and a substring the request body must contain; it counts
the calls it matched and the faults it injected, so a test can prove a fault really happened.

Rules:

- :class:`ErrorResponse` — the call fails before it reaches the backend (throttling, 500s, ...),
  answered in the request's protocol (JSON or XML), so the SDK sees a real AWS error.
- :class:`Latency` — the call is held for a while before it reaches the backend.
- :class:`PutRecordsEntryFailures` — Kinesis PutRecords partial failure: a share
  of the entries fail (``ProvisionedThroughputExceededException`` by default) and are *not*
  written; the others are, and the response lists each entry's outcome in order, as Kinesis does.
- :class:`UnprocessedKeys` — DynamoDB BatchGetItem: a share of the keys is not read and comes back
  under ``UnprocessedKeys`` with the table's read options.
- :class:`UnprocessedItems` — DynamoDB BatchWriteItem: a share of the write requests is not applied
  and comes back under ``UnprocessedItems``.

Rules are tried in the order they were added; the first that fires handles the call. Requests
to localcloud's own mounted servers never reach the middleware. :func:`kill_processes` ends
processes at once, e.g. a function's busy workers from
``cloud.runtime.pool(name).worker_pids(busy_only=True)``. The module knows nothing about any
particular application.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import signal
import threading
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qs

from localcloud.server import WsgiApp, aws_service_of

__all__ = [
    "AwsCall",
    "AwsResponse",
    "ErrorResponse",
    "FaultInjector",
    "FaultRule",
    "Latency",
    "PutRecordsEntryFailures",
    "UnprocessedItems",
    "UnprocessedKeys",
    "aws_operation_of",
    "kill_processes",
]

_R = TypeVar("_R", bound="FaultRule")
StartResponse = Callable[..., Any]


# -- the call and its response ---------------------------------------------------------------------


def aws_operation_of(environ: dict[str, Any], body: bytes = b"") -> str | None:
    """The API operation of a request: from ``X-Amz-Target`` (JSON protocols) or ``Action`` (query).

    REST protocols (S3, Lambda, ...) carry the operation in the method and path; they give None.
    """
    target = str(environ.get("HTTP_X_AMZ_TARGET") or "")
    if target:
        return target.rsplit(".", 1)[-1]
    for source in (str(environ.get("QUERY_STRING", "")), body.decode("latin-1") if _is_form(environ) else ""):
        action: list[str] | None = parse_qs(source).get("Action")
        if action:
            return action[0]
    return None


def _is_form(environ: dict[str, Any]) -> bool:
    return str(environ.get("CONTENT_TYPE", "")).startswith("application/x-www-form-urlencoded")


@dataclass
class AwsCall:
    """One buffered AWS API call on its way to the backend."""

    environ: dict[str, Any]
    service: str | None
    operation: str | None
    body: bytes

    @property
    def is_json(self) -> bool:
        """True for the JSON protocols (``X-Amz-Target``), whose errors are JSON too."""
        return bool(self.environ.get("HTTP_X_AMZ_TARGET"))

    def json(self) -> dict[str, Any]:
        """The request body parsed as JSON."""
        parsed: dict[str, Any] = json.loads(self.body or b"{}")
        return parsed

    def with_json(self, payload: dict[str, Any]) -> AwsCall:
        """A copy of the call carrying ``payload`` as its body (e.g. fewer PutRecords entries)."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        environ = dict(self.environ)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        return AwsCall(environ, self.service, self.operation, body)


@dataclass
class AwsResponse:
    """A complete WSGI response."""

    status: str
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def ok(self) -> bool:
        """True for a 2xx status."""
        return self.status.startswith("2")

    def json(self) -> dict[str, Any]:
        """The body parsed as JSON."""
        parsed: dict[str, Any] = json.loads(self.body or b"{}")
        return parsed

    def with_json(self, payload: dict[str, Any]) -> AwsResponse:
        """A copy with ``payload`` as its body; length and DynamoDB's CRC32 header follow the body."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers: list[tuple[str, str]] = []
        for name, value in self.headers:
            lower = name.lower()
            if lower == "content-length":
                headers.append((name, str(len(body))))
            elif lower == "x-amz-crc32":
                # The SDK checks it and retries the call on a mismatch, which would hide the fault.
                headers.append((name, str(zlib.crc32(body) & 0xFFFFFFFF)))
            else:
                headers.append((name, value))
        return AwsResponse(self.status, headers, body)


def call_backend(app: WsgiApp, call: AwsCall) -> AwsResponse:
    """Run ``call`` through ``app`` and collect the whole response."""
    captured: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        captured["status"], captured["headers"] = status, list(headers)
        return lambda data: None

    call.environ["wsgi.input"] = io.BytesIO(call.body)
    call.environ["CONTENT_LENGTH"] = str(len(call.body))
    result = app(call.environ, start_response)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return AwsResponse(captured["status"], captured["headers"], body)


def error_response(call: AwsCall, status: int, code: str, message: str) -> AwsResponse:
    """An AWS error in the call's protocol: JSON (``__type`` + ``message``) or query XML."""
    request_id = str(uuid.uuid4())
    reasons = {400: "Bad Request", 500: "Internal Server Error", 503: "Service Unavailable"}
    reason = reasons.get(status, "Error")
    if call.is_json:
        body = json.dumps({"__type": code, "message": message}).encode()
        content_type = str(call.environ.get("CONTENT_TYPE") or "application/x-amz-json-1.1")
        headers = [("Content-Type", content_type), ("x-amzn-ErrorType", code)]
    else:
        sender = "Sender" if status < 500 else "Receiver"
        body = (
            f"<ErrorResponse><Error><Type>{sender}</Type><Code>{code}</Code>"
            f"<Message>{message}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        headers = [("Content-Type", "text/xml")]
    headers += [("x-amzn-RequestId", request_id), ("Content-Length", str(len(body)))]
    return AwsResponse(f"{status} {reason}", headers, body)


# -- rules -------------------------------------------------------------------------------------------


@dataclass(eq=False)
class FaultRule:
    """What every rule shares: which calls it matches, how often it fires, and its counters.

    ``rate`` is the share of matching calls that get the fault (for the per-entry rules: the share
    of entries or keys). ``limit`` caps the faults injected (calls, or entries/keys for per-entry
    rules); ``duration_s`` ends the rule that long after it was added. ``body_contains`` narrows the
    rule to requests whose body holds that text (e.g. one table or one item's key).
    """

    service: str
    operations: frozenset[str] | set[str] | tuple[str, ...] = ()
    rate: float = 1.0
    limit: int | None = None
    duration_s: float | None = None
    body_contains: bytes | str | None = None
    matched: int = field(default=0, init=False)
    injected: int = field(default=0, init=False)
    _ends_at: float | None = field(default=None, init=False, repr=False)
    _rng: random.Random = field(default_factory=random.Random, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"rate must be in [0, 1], got {self.rate}")
        self.operations = frozenset(self.operations)
        if isinstance(self.body_contains, str):
            self.body_contains = self.body_contains.encode()

    # The injector calls these; a rule is only ever used by one injector.
    def _arm(self, now: float, seed: int | None) -> None:
        self._ends_at = now + self.duration_s if self.duration_s is not None else None
        if seed is not None:
            self._rng.seed(seed)

    def active(self, now: float | None = None) -> bool:
        """True while the rule can still inject (not expired, limit not reached)."""
        now = time.monotonic() if now is None else now
        if self._ends_at is not None and now >= self._ends_at:
            return False
        return self.limit is None or self.injected < self.limit

    def matches(self, call: AwsCall, now: float) -> bool:
        """True when the rule applies to this call (service, operation, body) and is still active."""
        if call.service != self.service:
            return False
        if self.operations and call.operation not in self.operations:
            return False
        needle = self.body_contains
        if isinstance(needle, str):
            needle = needle.encode()
        if needle is not None and needle not in call.body:
            return False
        return self.active(now)

    def count_match(self) -> None:
        """Count one call the rule matched (whether or not the draw then injects)."""
        with self._lock:
            self.matched += 1

    def roll(self) -> bool:
        """Draw whether one call (or entry) gets the fault, within the limit; counts it when it does."""
        with self._lock:
            if self.limit is not None and self.injected >= self.limit:
                return False
            if self.rate < 1.0 and self._rng.random() >= self.rate:
                return False
            self.injected += 1
            return True

    def apply(self, call: AwsCall, backend: Callable[[AwsCall], AwsResponse]) -> AwsResponse | None:
        """Handle a matching call; None lets it through untouched. Subclasses implement this."""
        raise NotImplementedError


@dataclass(eq=False)
class ErrorResponse(FaultRule):
    """Fail the whole call with an AWS error before it reaches the backend (nothing is applied)."""

    status: int = 400
    code: str = "ThrottlingException"
    message: str = "Rate exceeded"

    def apply(self, call: AwsCall, backend: Callable[[AwsCall], AwsResponse]) -> AwsResponse | None:
        """The error, for the share of calls that draw it."""
        if not self.roll():
            return None
        return error_response(call, self.status, self.code, self.message)


@dataclass(eq=False)
class Latency(FaultRule):
    """Hold the call for ``delay_s`` before it reaches the backend (the backend then applies it)."""

    delay_s: float = 1.0

    def apply(self, call: AwsCall, backend: Callable[[AwsCall], AwsResponse]) -> AwsResponse | None:
        """Sleep, then forward."""
        if not self.roll():
            return None
        time.sleep(self.delay_s)
        return backend(call)


@dataclass(eq=False)
class PutRecordsEntryFailures(FaultRule):
    """Kinesis PutRecords partial failure: a share (``rate``) of the entries fail and are not written.

    The surviving entries go to the backend in one call; the response lists every entry in request
    order, the failed ones with ``ErrorCode`` / ``ErrorMessage``, and ``FailedRecordCount`` adds them.
    """

    operations: frozenset[str] | set[str] | tuple[str, ...] = ("PutRecords",)
    code: str = "ProvisionedThroughputExceededException"
    message: str = "Rate exceeded for shard in stream under account 123456789012."

    def apply(self, call: AwsCall, backend: Callable[[AwsCall], AwsResponse]) -> AwsResponse | None:
        """Split the entries, forward the survivors, merge the outcomes back in order."""
        request = call.json()
        entries = request.get("Records") or []
        failed = [self.roll() for _ in entries]
        if not any(failed):
            return None
        survivors = [e for e, f in zip(entries, failed, strict=True) if not f]
        outcomes: Iterator[dict[str, Any]] = iter(())
        base: AwsResponse | None = None
        if survivors:
            base = backend(call.with_json({**request, "Records": survivors}))
            if not base.ok:
                return base  # the whole call failed anyway: nothing to merge
            outcomes = iter(base.json().get("Records", []))
        records: list[dict[str, Any]] = [
            {"ErrorCode": self.code, "ErrorMessage": self.message} if f else next(outcomes) for f in failed
        ]
        payload = {
            **(base.json() if base is not None else {}),
            "FailedRecordCount": sum(1 for r in records if "ErrorCode" in r),
            "Records": records,
        }
        return _fresh_json(payload, call) if base is None else base.with_json(payload)


@dataclass(eq=False)
class UnprocessedKeys(FaultRule):
    """DynamoDB BatchGetItem: a share (``rate``) of the keys is left unread, under ``UnprocessedKeys``."""

    operations: frozenset[str] | set[str] | tuple[str, ...] = ("BatchGetItem",)

    def apply(self, call: AwsCall, backend: Callable[[AwsCall], AwsResponse]) -> AwsResponse | None:
        """Hold back keys, read the rest, report the held-back keys with their table's options."""
        request = call.json()
        forwarded: dict[str, Any] = {}
        held: dict[str, Any] = {}
        for table, spec in (request.get("RequestItems") or {}).items():
            keep, skip = _split(spec.get("Keys") or [], self.roll)
            if keep:
                forwarded[table] = {**spec, "Keys": keep}
            if skip:
                held[table] = {**spec, "Keys": skip}
        if not held:
            return None
        return _merge_unprocessed(call, backend, request, forwarded, held, "Responses", "UnprocessedKeys")


@dataclass(eq=False)
class UnprocessedItems(FaultRule):
    """DynamoDB BatchWriteItem: a share (``rate``) of the writes is not applied (``UnprocessedItems``)."""

    operations: frozenset[str] | set[str] | tuple[str, ...] = ("BatchWriteItem",)

    def apply(self, call: AwsCall, backend: Callable[[AwsCall], AwsResponse]) -> AwsResponse | None:
        """Hold back write requests, apply the rest, report the held-back ones."""
        request = call.json()
        forwarded: dict[str, Any] = {}
        held: dict[str, Any] = {}
        for table, writes in (request.get("RequestItems") or {}).items():
            keep, skip = _split(writes or [], self.roll)
            if keep:
                forwarded[table] = keep
            if skip:
                held[table] = skip
        if not held:
            return None
        return _merge_unprocessed(call, backend, request, forwarded, held, None, "UnprocessedItems")


def _split(items: list[Any], draw: Callable[[], bool]) -> tuple[list[Any], list[Any]]:
    keep: list[Any] = []
    skip: list[Any] = []
    for item in items:
        (skip if draw() else keep).append(item)
    return keep, skip


def _fresh_json(payload: dict[str, Any], call: AwsCall) -> AwsResponse:
    """A 200 JSON response built here, for calls none of whose parts reach the backend."""
    content_type = str(call.environ.get("CONTENT_TYPE") or "application/x-amz-json-1.1")
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = [
        ("Content-Type", content_type),
        ("x-amzn-RequestId", str(uuid.uuid4())),
        ("Content-Length", str(len(body))),
    ]
    if call.service == "dynamodb":
        headers.append(("x-amz-crc32", str(zlib.crc32(body) & 0xFFFFFFFF)))
    return AwsResponse("200 OK", headers, body)


def _merge_unprocessed(  # noqa: PLR0917 - private helper of the two batch rules
    call: AwsCall,
    backend: Callable[[AwsCall], AwsResponse],
    request: dict[str, Any],
    forwarded: dict[str, Any],
    held: dict[str, Any],
    results_key: str | None,
    unprocessed_key: str,
) -> AwsResponse:
    """Forward what is left of a batch call and add the held-back part to its unprocessed map."""
    if not forwarded:
        # DynamoDB rejects an empty batch, so answer alone, as a call that processed nothing.
        payload: dict[str, Any] = {unprocessed_key: held}
        if results_key is not None:
            payload[results_key] = {table: [] for table in held}
        return _fresh_json(payload, call)
    base = backend(call.with_json({**request, "RequestItems": forwarded}))
    if not base.ok:
        return base
    payload = base.json()
    unprocessed: dict[str, Any] = payload.get(unprocessed_key) or {}
    for table, part in held.items():
        if results_key is None:  # BatchWriteItem: a list of write requests per table
            unprocessed[table] = [*unprocessed.get(table, []), *part]
        else:  # BatchGetItem: the table's read options with its keys
            existing = unprocessed.get(table)
            unprocessed[table] = {**part, "Keys": [*(existing or {}).get("Keys", []), *part["Keys"]]}
    payload[unprocessed_key] = unprocessed
    return base.with_json(payload)


# -- the middleware -----------------------------------------------------------------------------------


class FaultInjector:
    """A WSGI middleware (``app -> app``) injecting the faults of its rules into AWS API calls.

    ``injector = FaultInjector(seed=7); cloud.add_middleware(injector)``; then
    ``with injector.active(ErrorResponse("dynamodb", {"PutItem"}, rate=0.3)) as rule: ...`` adds a
    rule for the block and removes it afterwards, even when the block fails. :attr:`calls` counts
    every call seen per ``(service, operation)``, faulted or not. ``seed`` makes the draws
    repeatable (each rule gets its own stream derived from it).
    """

    def __init__(self, seed: int | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._seed = seed
        self._clock = clock
        self._rules: list[FaultRule] = []
        self._added = 0
        self._lock = threading.Lock()
        self.calls: Counter[tuple[str | None, str | None]] = Counter()

    # -- rules
    def add(self, rule: _R) -> _R:
        """Start injecting ``rule`` (its ``duration_s`` counts from now); returns it."""
        with self._lock:
            self._added += 1
            rule._arm(self._clock(), None if self._seed is None else self._seed * 1_000_003 + self._added)
            self._rules.append(rule)
        return rule

    def remove(self, rule: FaultRule) -> None:
        """Stop injecting ``rule`` (its counters stay readable)."""
        with self._lock:
            if rule in self._rules:
                self._rules.remove(rule)

    def clear(self) -> None:
        """Remove every rule."""
        with self._lock:
            self._rules.clear()

    @contextlib.contextmanager
    def active(self, rule: _R) -> Iterator[_R]:
        """Inject ``rule`` for the duration of a ``with`` block."""
        self.add(rule)
        try:
            yield rule
        finally:
            self.remove(rule)

    @property
    def rules(self) -> list[FaultRule]:
        """The rules injecting now, in the order they are tried."""
        with self._lock:
            return list(self._rules)

    def calls_to(self, service: str, operation: str | None = None) -> int:
        """How many calls to ``service`` (and ``operation``) went through the middleware."""
        with self._lock:
            return sum(n for (svc, op), n in self.calls.items() if svc == service and operation in (None, op))

    # -- WSGI
    def __call__(self, app: WsgiApp) -> WsgiApp:
        """Wrap ``app`` (the middleware protocol of :meth:`localcloud.LocalCloud.add_middleware`)."""

        def middleware(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
            return self._handle(app, environ, start_response)

        return middleware

    def _handle(
        self, app: WsgiApp, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        service = aws_service_of(environ)
        rules = self.rules
        if service is None or not any(r.service == service for r in rules):
            with self._lock:
                self.calls[(service, environ.get("HTTP_X_AMZ_TARGET", "").rsplit(".", 1)[-1] or None)] += 1
            return app(environ, start_response)
        body = _read_body(environ)
        call = AwsCall(environ, service, aws_operation_of(environ, body), body)
        with self._lock:
            self.calls[(service, call.operation)] += 1
        now = self._clock()
        for rule in rules:
            if not rule.matches(call, now):
                continue
            rule.count_match()
            response = rule.apply(call, lambda c: call_backend(app, c))
            if response is not None:
                start_response(response.status, response.headers)
                return [response.body]
        call.environ["wsgi.input"] = io.BytesIO(call.body)
        return app(call.environ, start_response)


def _read_body(environ: dict[str, Any]) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    stream = environ.get("wsgi.input")
    body = stream.read(length) if stream is not None and length > 0 else b""
    return bytes(body)


# -- processes ---------------------------------------------------------------------------------------


def kill_processes(pids: Iterable[int], sig: int = signal.SIGKILL) -> list[int]:
    """Send ``sig`` (default: kill -9) to each process; returns the pids that were signalled."""
    killed: list[int] = []
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
            killed.append(pid)
    return killed
