"""EventBridge schedule rules: ``rate(...)`` and ``cron(...)`` rules invoke their Lambda targets.

moto stores rules but never fires scheduled ones. The runner reads the rules from moto's events
backend and invokes function targets asynchronously with the ``Scheduled Event`` shape (or what the
target's ``Input``, ``InputPath`` or ``InputTransformer`` makes of it).

``time_scale`` shrinks ``rate`` periods for tests (0.01 turns ``rate(1 minute)`` into 0.6 s);
cron schedules always follow the wall clock.
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from croniter import CroniterError, croniter
from moto.events.models import events_backends

from localcloud.aws import ACCOUNT_ID
from localcloud.moto_bridge import rule_target_event

LOG = logging.getLogger(__name__)

_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_CRON = re.compile(r"^cron\((.+)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
_LAST_WEEKDAY = re.compile(r"^([1-7])L$")
_NUMBER = re.compile(r"\d+")


class ScheduleExpression(Protocol):
    """A parsed schedule."""

    def next_after(self, moment: datetime, time_scale: float = 1.0) -> datetime:
        """The first firing strictly after ``moment`` (UTC)."""
        ...


@dataclass(frozen=True)
class RateSchedule:
    """``rate(N unit)``: every N units, the first one N units after the rule appears."""

    period_s: int

    def next_after(self, moment: datetime, time_scale: float = 1.0) -> datetime:
        """``moment`` plus one (scaled) period."""
        return moment + timedelta(seconds=self.period_s * time_scale)


def _weekday_token(token: str) -> str:
    """One day-of-week list item from EventBridge's numbering (SUN=1..SAT=7) to croniter's (SUN=0)."""
    last = _LAST_WEEKDAY.match(token)
    if last:  # EventBridge's "6L" (the last Friday) is croniter's "L5"
        return f"L{int(last.group(1)) - 1}"
    base, hash_sign, nth = token.partition("#")
    base, slash, step = base.partition("/")

    def shift(match: re.Match[str]) -> str:
        day = int(match.group(0))
        if not 1 <= day <= 7:
            raise ValueError(f"day-of-week {day} is out of range 1-7")
        return str(day - 1)

    return _NUMBER.sub(shift, base) + slash + step + hash_sign + nth


def _croniter_expression(body: str) -> str:
    """EventBridge's six fields as croniter's seven (minute hour dom month dow second year)."""
    fields = body.split()
    if len(fields) != 6:
        raise ValueError(f"cron({body}) needs 6 fields: minutes hours day-of-month month day-of-week year")
    minutes, hours, day_of_month, month, day_of_week, year = fields
    # EventBridge insists that exactly one of the two day fields is "?" (it has no "either" rule).
    if (day_of_month == "?") == (day_of_week == "?"):
        raise ValueError(f"cron({body}): exactly one of day-of-month and day-of-week must be '?'")
    if day_of_week == "?":
        day_of_week = "*"
    else:
        day_of_week = ",".join(_weekday_token(token) for token in day_of_week.upper().split(","))
    day_of_month = "*" if day_of_month == "?" else day_of_month
    return f"{minutes} {hours} {day_of_month} {month} {day_of_week} 0 {year}"


@dataclass(frozen=True)
class CronSchedule:
    """``cron(minutes hours day-of-month month day-of-week year)``, in UTC, evaluated by croniter.

    croniter understands the same field syntax (lists, ranges, steps, month and weekday names, ``L``,
    ``W`` and ``#``); only the weekday numbering and the ``?`` placeholder are EventBridge's own.
    """

    expression: str

    @classmethod
    def parse(cls, body: str) -> CronSchedule:
        """Parse and validate the six space-separated fields."""
        expression = _croniter_expression(body)
        try:
            croniter(expression, datetime(2000, 1, 1, tzinfo=UTC))
        except (CroniterError, ValueError) as exc:
            raise ValueError(f"cron({body}): {exc}") from exc
        return cls(expression)

    def next_after(self, moment: datetime, time_scale: float = 1.0) -> datetime:
        """The first matching minute strictly after ``moment``."""
        try:
            following: datetime = croniter(self.expression, moment.astimezone(UTC)).get_next(datetime)
        except CroniterError as exc:  # e.g. a year list entirely in the past
            raise ValueError(f"the cron expression never fires again: {exc}") from exc
        return following.astimezone(UTC)


def parse_schedule(expression: str) -> ScheduleExpression:
    """Parse an EventBridge ``rate(...)`` or ``cron(...)`` expression."""
    expression = expression.strip()
    rate = _RATE.match(expression)
    if rate:
        amount, unit = int(rate.group(1)), rate.group(2).rstrip("s")
        if amount <= 0:
            raise ValueError(f"{expression}: the rate must be positive")
        return RateSchedule(amount * _UNIT_SECONDS[unit])
    cron = _CRON.match(expression)
    if cron:
        return CronSchedule.parse(cron.group(1))
    raise ValueError(f"not a schedule expression: {expression!r}")


def scheduled_event(rule_arn: str, region: str, moment: datetime) -> dict[str, Any]:
    """The event EventBridge sends for a scheduled rule."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }


class AsyncDispatch(Protocol):
    """Where fired events go."""

    def invoke_async(self, function: str, event: Any, source: str) -> None:
        """Queue an asynchronous invocation."""
        ...


class ScheduleRunner:
    """Fires enabled schedule rules of moto's events backend on a background thread."""

    def __init__(
        self,
        dispatch: AsyncDispatch,
        region: str,
        time_scale: float = 1.0,
        clock: Callable[[], datetime] | None = None,
        tick_s: float = 0.1,
    ) -> None:
        self._dispatch = dispatch
        self._region = region
        self.time_scale = time_scale
        self._clock = clock or (lambda: datetime.now(UTC))
        self._tick_s = tick_s
        self._next_fire: dict[tuple[str, str], datetime] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.fired = 0

    def start(self) -> None:
        """Start the background thread."""
        self._thread = threading.Thread(target=self._loop, name="schedule-rules", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop firing."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self._tick_s):
            try:
                self.tick()
            except Exception:
                LOG.exception("schedule rules tick failed")

    def _rules(self) -> list[Any]:
        backend = events_backends[ACCOUNT_ID][self._region]
        rules: list[Any] = []
        for bus in backend.event_buses.values():
            rules.extend(bus.rules.values())
        return rules

    def tick(self) -> int:
        """Fire every rule that is due; returns how many rules fired."""
        now = self._clock()
        fired = 0
        seen: set[tuple[str, str]] = set()
        for rule in self._rules():
            expression = getattr(rule, "scheduled_expression", None)
            if not expression or getattr(rule, "state", "ENABLED") != "ENABLED":
                continue
            key = (rule.arn, expression)
            seen.add(key)
            try:
                schedule = parse_schedule(expression)
            except ValueError as exc:
                LOG.warning("rule %s: %s", rule.name, exc)
                continue
            due = self._next_fire.get(key)
            if due is None:
                self._next_fire[key] = schedule.next_after(now, self.time_scale)
                continue
            if now < due:
                continue
            self._fire(rule, due)
            fired += 1
            following = schedule.next_after(due, self.time_scale)
            # After a long pause, skip the missed firings rather than replaying them all.
            self._next_fire[key] = following if following > now else schedule.next_after(now, self.time_scale)
        for key in set(self._next_fire) - seen:
            del self._next_fire[key]
        self.fired += fired
        return fired

    def _fire(self, rule: Any, moment: datetime) -> None:
        for target in list(getattr(rule, "targets", [])):
            arn = target.get("Arn", "")
            if ":lambda:" not in arn:
                LOG.info("rule %s: only Lambda targets are invoked locally (skipping %s)", rule.name, arn)
                continue
            event = rule_target_event(target, scheduled_event(rule.arn, self._region, moment))
            self._dispatch.invoke_async(arn, event, "events:schedule")
