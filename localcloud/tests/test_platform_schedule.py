"""Schedule expressions: rate(...) and cron(...) parsing and next firing times (no servers)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from localcloud.triggers.schedule import ScheduleRunner, parse_schedule, scheduled_event

T0 = datetime(2026, 11, 21, 16, 34, 27, tzinfo=UTC)  # a Saturday


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [("rate(1 minute)", 60), ("rate(5 minutes)", 300), ("rate(1 hour)", 3600), ("rate(2 days)", 172800)],
)
def test_rate_fires_one_period_later(expression, seconds):
    assert parse_schedule(expression).next_after(T0) == T0 + timedelta(seconds=seconds)


def test_rate_period_scales_for_tests():
    assert parse_schedule("rate(1 minute)").next_after(T0, time_scale=0.01) == T0 + timedelta(seconds=0.6)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("cron(0/15 * * * ? *)", datetime(2026, 11, 21, 16, 45, tzinfo=UTC)),
        ("cron(0 18 * * ? *)", datetime(2026, 11, 21, 18, 0, tzinfo=UTC)),
        ("cron(0 8 * * ? *)", datetime(2026, 11, 22, 8, 0, tzinfo=UTC)),
        # Weekdays count from SUN=1: the next Monday is the 23rd.
        ("cron(30 9 ? * MON-FRI *)", datetime(2026, 11, 23, 9, 30, tzinfo=UTC)),
        ("cron(30 9 ? * 2 *)", datetime(2026, 11, 23, 9, 30, tzinfo=UTC)),
        ("cron(0 0 1 JAN ? *)", datetime(2027, 1, 1, 0, 0, tzinfo=UTC)),
        ("cron(10,40 16 21 11 ? 2026)", datetime(2026, 11, 21, 16, 40, tzinfo=UTC)),
        ("cron(* * * * ? *)", datetime(2026, 11, 21, 16, 35, tzinfo=UTC)),
        # The last day of the month, the weekday nearest the 15th, the third Friday, the last Friday.
        ("cron(0 10 L * ? *)", datetime(2026, 11, 30, 10, 0, tzinfo=UTC)),
        ("cron(0 10 15W * ? *)", datetime(2026, 12, 15, 10, 0, tzinfo=UTC)),
        ("cron(0 10 ? * 6#3 *)", datetime(2026, 12, 18, 10, 0, tzinfo=UTC)),
        ("cron(0 10 ? * 6L *)", datetime(2026, 11, 27, 10, 0, tzinfo=UTC)),
        ("cron(0 10 ? * 1,7 *)", datetime(2026, 11, 22, 10, 0, tzinfo=UTC)),
    ],
)
def test_cron_next_firing(expression, expected):
    assert parse_schedule(expression).next_after(T0) == expected


@pytest.mark.parametrize(
    "expression",
    [
        "rate(0 minutes)",
        "rate(1 fortnight)",
        "cron(0 18 * * *)",
        "cron(0 25 * * ? *)",
        "cron(0 10 * * 1 *)",  # both day fields set: EventBridge wants one of them to be ?
        "cron(0 10 ? * ? *)",
        "cron(0 10 ? * 8 *)",
        "every day",
    ],
)
def test_invalid_or_unsupported_expressions_are_rejected(expression):
    with pytest.raises(ValueError):
        parse_schedule(expression)


def test_scheduled_event_shape():
    event = scheduled_event("arn:aws:events:us-east-1:123456789012:rule/r", "us-east-1", T0)

    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == "aws.events"
    assert event["resources"] == ["arn:aws:events:us-east-1:123456789012:rule/r"]
    assert event["time"] == "2026-11-21T16:34:27Z"
    assert event["detail"] == {}


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, object, str]] = []

    def invoke_async(self, function: str, event: object, source: str) -> None:
        self.calls.append((function, event, source))


class _Rule:
    def __init__(self, expression: str, targets: list[dict[str, str]], state: str = "ENABLED") -> None:
        self.name = "r"
        self.arn = "arn:aws:events:us-east-1:123456789012:rule/r"
        self.scheduled_expression = expression
        self.state = state
        self.targets = targets


def test_runner_fires_due_rules_on_an_injected_clock(monkeypatch):
    now = [T0]
    recorder = _Recorder()
    runner = ScheduleRunner(recorder, "us-east-1", clock=lambda: now[0])
    rules = [
        _Rule(
            "rate(1 minute)",
            [{"Arn": "arn:aws:lambda:us-east-1:123456789012:function:f", "Input": '{"a": 1}'}],
        ),
        _Rule(
            "rate(1 minute)", [{"Arn": "arn:aws:lambda:us-east-1:123456789012:function:g"}], state="DISABLED"
        ),
    ]
    monkeypatch.setattr(runner, "_rules", lambda: rules)

    assert runner.tick() == 0  # first sight: scheduled one period ahead
    now[0] = T0 + timedelta(seconds=59)
    assert runner.tick() == 0
    now[0] = T0 + timedelta(seconds=60)
    assert runner.tick() == 1
    now[0] = T0 + timedelta(minutes=10)
    assert runner.tick() == 1  # missed firings are not replayed

    assert [c[0] for c in recorder.calls] == ["arn:aws:lambda:us-east-1:123456789012:function:f"] * 2
    assert recorder.calls[0][1] == {"a": 1}


def test_a_cron_whose_years_are_past_never_fires_again():
    with pytest.raises(ValueError, match="never fires"):
        parse_schedule("cron(0 10 * * ? 2020)").next_after(T0)
