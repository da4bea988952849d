"""Topic rules and the rules engine that runs them on every published message.

A rule is built from a ``TopicRulePayload`` (CloudFormation or IoT API spelling). The engine matches
each message's topic against every enabled rule's ``FROM`` filter on the publishing thread (cheap),
then hands it to the rule's own worker thread, which evaluates ``WHERE``/``SELECT`` and runs the
actions in order: one slow rule never holds up the broker or another rule, and each rule sees
messages in publish order. A failed action never vanishes: the rule's error action gets AWS's error
message, and what still fails is logged, counted and kept in :attr:`RuleEngine.failures`.
"""

from __future__ import annotations

import base64
import json
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from localcloud.iot.actions import (
    ActionConfigError,
    ActionError,
    ActionServices,
    RuleAction,
    build_action,
    prop,
)
from localcloud.iot.messages import IotMessage
from localcloud.iot.sql import EvalContext, Query, SelectResult, SqlError, parse_sql
from localcloud.iot.topics import topic_matches

LOG = logging.getLogger(__name__)

# Most messages one rule takes from its queue at once (Kinesis PutRecords' limit).
MAX_BATCH = 500
# How many unrecoverable failures the engine keeps for inspection.
MAX_KEPT_FAILURES = 1000


class RuleConfigError(ValueError):
    """A topic rule that cannot be run locally (bad SQL, missing or unresolved properties)."""


@dataclass
class RuleStats:
    """Counters for one rule.

    ``received``: messages whose topic matched ``FROM``; ``matched``: of those, the ones ``WHERE``
    let through; ``actions_succeeded`` / ``actions_failed``: action runs; ``error_actions_*``: error
    action runs; ``lost``: messages with a failed action and no working error action (logged and kept
    in :attr:`RuleEngine.failures`); ``function_errors``: Lambda handler errors (not failures on AWS).
    """

    received: int = 0
    matched: int = 0
    actions_succeeded: int = 0
    actions_failed: int = 0
    error_actions_succeeded: int = 0
    error_actions_failed: int = 0
    lost: int = 0
    evaluation_errors: int = 0
    function_errors: int = 0


@dataclass(frozen=True)
class ActionFailure:
    """One failed action, in the shape of an error action message's ``failures`` entry."""

    failed_action: str
    failed_resource: str
    error_message: str

    def to_json(self) -> dict[str, str]:
        """The entry as AWS writes it."""
        return {
            "failedAction": self.failed_action,
            "failedResource": self.failed_resource,
            "errorMessage": self.error_message,
        }


@dataclass(frozen=True)
class FailedMessage:
    """A message whose actions failed and whose error action (if any) failed too."""

    rule_name: str
    topic: str
    payload: bytes
    failures: tuple[ActionFailure, ...]
    error_action_error: str | None


@dataclass
class TopicRule:
    """A runnable topic rule."""

    name: str
    query: Query
    actions: list[RuleAction]
    error_action: RuleAction | None = None
    disabled: bool = False
    description: str = ""
    # Where it came from: "<stack>/<logical id>", or what the caller passed to add_rule.
    source: str = ""
    unsupported_actions: list[str] = field(default_factory=list)

    @classmethod
    def from_payload(
        cls, name: str, payload: Mapping[str, Any], services: ActionServices, source: str = ""
    ) -> TopicRule:
        """Build a rule from a ``TopicRulePayload``; raise :class:`RuleConfigError` when it cannot run.

        Action types localcloud does not implement are left out and listed in
        ``unsupported_actions`` (the rule still runs its other actions).
        """
        sql = prop(payload, "Sql")
        if not isinstance(sql, str):
            raise RuleConfigError(f"rule {name}: Sql is missing or unresolved ({sql!r})")
        try:
            query = parse_sql(sql)
        except SqlError as exc:
            raise RuleConfigError(f"rule {name}: {exc}") from exc
        actions: list[RuleAction] = []
        unsupported: list[str] = []
        for definition in prop(payload, "Actions", []) or []:
            try:
                actions.append(build_action(definition, services))
            except ActionConfigError as exc:
                LOG.warning("rule %s: %s", name, exc)
                unsupported.append(str(exc))
        error_action = None
        error_definition = prop(payload, "ErrorAction")
        if error_definition:
            try:
                error_action = build_action(error_definition, services)
            except ActionConfigError as exc:
                LOG.warning("rule %s: error action: %s", name, exc)
                unsupported.append(f"error action: {exc}")
        disabled = str(prop(payload, "RuleDisabled", False)).lower() == "true"
        return cls(
            name=name,
            query=query,
            actions=actions,
            error_action=error_action,
            disabled=disabled,
            description=str(prop(payload, "Description", "") or ""),
            source=source,
            unsupported_actions=unsupported,
        )


@dataclass(frozen=True)
class RuleInfo:
    """What the engine knows about one rule, for callers and reports."""

    name: str
    source: str
    sql: str
    topic_filter: str
    disabled: bool
    actions: tuple[str, ...]
    error_action: str | None
    unsupported_actions: tuple[str, ...] = ()
    # Set when the rule could not be loaded at all (then it does not run).
    error: str | None = None

    @classmethod
    def of(cls, rule: TopicRule) -> RuleInfo:
        """Describe a loaded rule."""
        return cls(
            name=rule.name,
            source=rule.source,
            sql=rule.query.sql,
            topic_filter=rule.query.topic_filter,
            disabled=rule.disabled,
            actions=tuple(a.describe() for a in rule.actions),
            error_action=rule.error_action.describe() if rule.error_action else None,
            unsupported_actions=tuple(rule.unsupported_actions),
        )

    @classmethod
    def failed(cls, name: str, source: str, error: str) -> RuleInfo:
        """Describe a rule that could not be loaded."""
        return cls(name, source, "", "", True, (), None, (), error)


class _RuleWorker:
    """One rule's queue and thread."""

    def __init__(self, rule: TopicRule, engine: RuleEngine) -> None:
        self.rule = rule
        self.stats = RuleStats()
        self._engine = engine
        self._lock = threading.Lock()
        self._queue: queue.Queue[IotMessage | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name=f"iot-rule-{rule.name}", daemon=True)
        self._thread.start()

    def submit(self, message: IotMessage) -> None:
        with self._lock:
            self.stats.received += 1
        self._queue.put(message)

    @property
    def idle(self) -> bool:
        return self._queue.unfinished_tasks == 0

    def close(self) -> None:
        """Finish the messages already queued, then stop."""
        self._queue.put(None)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            # Take what queued up while the previous batch was in flight: actions with a batch
            # API (Kinesis PutRecords) then make one call for many messages.
            batch: list[IotMessage] = []
            item = self._queue.get()
            taken = 1
            while True:
                if item is None:
                    stopping = True
                    break
                batch.append(item)
                if len(batch) >= MAX_BATCH:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                taken += 1
            try:
                if batch:
                    self._process(batch)
            except Exception:
                LOG.exception("rule %s: unexpected error on %d message(s)", self.rule.name, len(batch))
            finally:
                for _ in range(taken):
                    self._queue.task_done()

    def snapshot(self) -> RuleStats:
        """A copy of the counters."""
        with self._lock:
            return RuleStats(**vars(self.stats))

    def _count(self, **increments: int) -> None:
        with self._lock:
            for name, amount in increments.items():
                setattr(self.stats, name, getattr(self.stats, name) + amount)

    def _evaluate(self, message: IotMessage) -> tuple[SelectResult, EvalContext] | None:
        rule = self.rule
        ctx = EvalContext(message)
        try:
            if not rule.query.matches(ctx):
                return None
            return rule.query.select(ctx), ctx
        except Exception as exc:  # an evaluation bug must not stop the rule
            LOG.warning("rule %s: could not evaluate the message on %s: %s", rule.name, message.topic, exc)
            self._count(evaluation_errors=1)
            return None

    def _process(self, messages: list[IotMessage]) -> None:
        rule = self.rule
        selected = [item for item in map(self._evaluate, messages) if item is not None]
        if not selected:
            return
        self._count(matched=len(selected))
        failures: list[list[ActionFailure]] = [[] for _ in selected]
        for action in rule.actions:
            errors_before = getattr(action, "function_errors", 0)
            try:
                outcomes = action.run_many(selected)
            except Exception as exc:
                outcomes = [exc] * len(selected)
            succeeded = 0
            for position, outcome in enumerate(outcomes):
                if outcome is None:
                    succeeded += 1
                    continue
                reason = (
                    str(outcome)
                    if isinstance(outcome, ActionError)
                    else f"{type(outcome).__name__}: {outcome}"
                )
                LOG.warning("rule %s: %s failed: %s", rule.name, action.describe(), reason)
                failures[position].append(ActionFailure(action.kind, action.resource, reason))
            self._count(
                actions_succeeded=succeeded,
                actions_failed=len(outcomes) - succeeded,
                function_errors=getattr(action, "function_errors", 0) - errors_before,
            )
        for (_, ctx), message_failures in zip(selected, failures, strict=True):
            if message_failures:
                self._handle_failures(ctx.message, ctx, message_failures)

    def _handle_failures(self, message: IotMessage, ctx: EvalContext, failures: list[ActionFailure]) -> None:
        rule = self.rule
        error_action_error: str | None = "the rule has no error action"
        if rule.error_action is not None:
            document = error_message(rule.name, message, failures)
            payload = json.dumps(document).encode()
            error_result = SelectResult(payload, document)
            try:
                rule.error_action.run(error_result, ctx)
            except Exception as exc:
                error_action_error = str(exc)
                self._count(error_actions_failed=1)
                LOG.error(
                    "rule %s: error action %s failed too: %s", rule.name, rule.error_action.describe(), exc
                )
            else:
                self._count(error_actions_succeeded=1)
                return
        self._count(lost=1)
        LOG.error(
            "rule %s: message on %s not delivered (%s); %s",
            rule.name,
            message.topic,
            "; ".join(f.error_message for f in failures),
            error_action_error,
        )
        self._engine.record_failure(
            FailedMessage(rule.name, message.topic, message.payload, tuple(failures), error_action_error)
        )


def error_message(rule_name: str, message: IotMessage, failures: Iterable[ActionFailure]) -> dict[str, Any]:
    """The message AWS sends to a rule's error action: one per rule and message, all failures in it."""
    return {
        "ruleName": rule_name,
        "topic": message.topic,
        "cloudwatchTraceId": message.trace_id,
        "clientId": message.client_id or "n/a",
        "base64OriginalPayload": base64.b64encode(message.payload).decode(),
        "failures": [f.to_json() for f in failures],
    }


class RuleEngine:
    """Runs topic rules on published messages; rules are grouped by source (e.g. a stack)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # source → rule name → worker
        self._groups: dict[str, dict[str, _RuleWorker]] = {}
        self._retired: list[_RuleWorker] = []
        self.failures: deque[FailedMessage] = deque(maxlen=MAX_KEPT_FAILURES)

    def replace(self, source: str, rules: Iterable[TopicRule]) -> None:
        """Make ``rules`` the rules of ``source``, retiring the ones it had (after their queues drain)."""
        workers = {rule.name: _RuleWorker(rule, self) for rule in rules}
        with self._lock:
            names_elsewhere = {
                name for other, group in self._groups.items() if other != source for name in group
            }
            clash = names_elsewhere & workers.keys()
            if clash:
                for worker in workers.values():
                    worker.close()
                raise RuleConfigError(f"rule names already used by another source: {sorted(clash)}")
            old = self._groups.pop(source, {})
            if workers:
                self._groups[source] = workers
            for worker in old.values():
                worker.close()
            self._retired = [w for w in self._retired if not w.idle] + list(old.values())

    def remove(self, source: str) -> None:
        """Drop every rule of ``source``."""
        self.replace(source, [])

    def submit(self, message: IotMessage) -> int:
        """Queue ``message`` for every enabled rule whose ``FROM`` filter matches; return how many."""
        count = 0
        with self._lock:
            for group in self._groups.values():
                for worker in group.values():
                    rule = worker.rule
                    if not rule.disabled and topic_matches(rule.query.topic_filter, message.topic):
                        worker.submit(message)
                        count += 1
        return count

    def rules(self) -> list[TopicRule]:
        """Every loaded rule."""
        with self._lock:
            return [w.rule for group in self._groups.values() for w in group.values()]

    def stats(self) -> dict[str, RuleStats]:
        """A snapshot of every rule's counters, by rule name."""
        with self._lock:
            workers = [w for group in self._groups.values() for w in group.values()]
        return {worker.rule.name: worker.snapshot() for worker in workers}

    def record_failure(self, failure: FailedMessage) -> None:
        """Keep a message that could not be delivered anywhere."""
        with self._lock:
            self.failures.append(failure)

    def idle(self) -> bool:
        """True when no rule has a message queued or in progress."""
        with self._lock:
            workers = [w for group in self._groups.values() for w in group.values()] + self._retired
        return all(w.idle for w in workers)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until :meth:`idle`; False when ``timeout`` seconds pass first."""
        deadline = time.monotonic() + timeout
        while not self.idle():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Let every rule finish what is queued (within ``timeout``), then stop the workers."""
        with self._lock:
            workers = [w for group in self._groups.values() for w in group.values()] + self._retired
            self._groups.clear()
            self._retired = []
        for worker in workers:
            worker.close()
        deadline = time.monotonic() + timeout
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
