"""The sample events in events/ are the shapes the trigger function recognises."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

PATTERN = Path(__file__).resolve().parents[1]


def load_trigger() -> ModuleType:
    # Loaded by path: every function's module is called app, as Lambda's Handler names it.
    spec = importlib.util.spec_from_file_location("lifo_trigger_app", PATTERN / "src" / "trigger" / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def event(name: str) -> Any:
    return json.loads((PATTERN / "events" / name).read_text())


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("stream_task_pending.json", "stream"),
        ("sns_tail_call.json", "tail-call"),
        ("ttl_shed_task.json", "stream"),
    ],
)
def test_the_trigger_knows_what_woke_it(name: str, reason: str) -> None:
    assert load_trigger().wake_reason(event(name)) == reason


def test_a_schedule_event_is_the_watchdog() -> None:
    assert (
        load_trigger().wake_reason({"source": "aws.events", "detail-type": "Scheduled Event"}) == "schedule"
    )


def test_a_ttl_deletion_is_marked_as_the_service() -> None:
    record = event("ttl_shed_task.json")["Records"][0]
    assert record["userIdentity"] == {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
