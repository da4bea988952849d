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

from moto.events.models import events_backends

from localcloud.aws import ACCOUNT_ID
from localcloud.moto_bridge import rule_target_event

LOG = logging.getLogger(__name__)

_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_CRON = re.compile(r"^cron\((.+)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
_MONTHS = {
    name: i + 1
    for i, name in enumerate(
        ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
    )
}
# EventBridge numbers weekdays 1-7 from Sunday.
_WEEKDAYS = {name: i + 1 for i, name in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])}
_MAX_SEARCH_DAYS = 366 * 5


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


def _parse_field(
    text: str, low: int, high: int, names: dict[str, int] | None = None
) -> frozenset[int] | None:
    """One cron field → the allowed values, or None for ``*`` / ``?`` (anything)."""
    if text in ("*", "?"):
        return None
    values: set[int] = set()
    for part in text.split(","):
        if any(token in part for token in ("L", "W", "#")) and not (names and part.upper() in names):
            raise ValueError(f"cron field {text!r}: L, W and # are not supported locally")
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1

        def value(token: str) -> int:
            token = token.upper()
            if names and token in names:
                return names[token]
            return int(token)

        if base == "*":
            start, end = low, high
        elif "-" in base:
            first, last = base.split("-", 1)
            start, end = value(first), value(last)
        else:
            start = value(base)
            end = high if step_text else start
        if not (low <= start <= high and low <= end <= high):
            raise ValueError(f"cron field {text!r} is out of range {low}-{high}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class CronSchedule:
    """``cron(minutes hours day-of-month month day-of-week year)``, in UTC."""

    minutes: frozenset[int] | None
    hours: frozenset[int] | None
    days_of_month: frozenset[int] | None
    months: frozenset[int] | None
    days_of_week: frozenset[int] | None
    years: frozenset[int] | None

    @classmethod
    def parse(cls, body: str) -> CronSchedule:
        """Parse the six space-separated fields."""
        fields = body.split()
        if len(fields) != 6:
            raise ValueError(
                f"cron({body}) needs 6 fields: minutes hours day-of-month month day-of-week year"
            )
        return cls(
            minutes=_parse_field(fields[0], 0, 59),
            hours=_parse_field(fields[1], 0, 23),
            days_of_month=_parse_field(fields[2], 1, 31),
            months=_parse_field(fields[3], 1, 12, _MONTHS),
            days_of_week=_parse_field(fields[4], 1, 7, _WEEKDAYS),
            years=_parse_field(fields[5], 1970, 2199),
        )

    def _day_matches(self, day: datetime) -> bool:
        weekday = (day.weekday() + 1) % 7 + 1
        return (
            (self.years is None or day.year in self.years)
            and (self.months is None or day.month in self.months)
            and (self.days_of_month is None or day.day in self.days_of_month)
            and (self.days_of_week is None or weekday in self.days_of_week)
        )

    def next_after(self, moment: datetime, time_scale: float = 1.0) -> datetime:
        """The first matching minute strictly after ``moment``."""
        moment = moment.astimezone(UTC)
        start = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
        hours = sorted(self.hours) if self.hours is not None else range(24)
        minutes = sorted(self.minutes) if self.minutes is not None else range(60)
        day = start.replace(hour=0, minute=0)
        for _ in range(_MAX_SEARCH_DAYS):
            if self._day_matches(day):
                for hour in hours:
                    for minute in minutes:
                        candidate = day.replace(hour=hour, minute=minute)
                        if candidate >= start:
                            return candidate
            day += timedelta(days=1)
        raise ValueError("the cron expression never fires within five years")


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
