"""localcloud stopped and started again mid-race, with its state folder.

State on stop: moto's backends (the stream's records, the table) and the mapping engine's
checkpoints with each shard's open tumbling window. After the restart the mapping resumes after the
checkpoint with the window's state: records not yet consumed are not skipped, and records already
merged are not merged again (or, if a batch was in flight, merged again idempotently).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.support import (
    assert_standings_match,
    drain,
    messages_of,
    plan,
    running_stack,
    send,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.xdist_group("faults-restart")]


def _consumed(stack: object) -> int:
    cloud = getattr(stack, "cloud", None)
    assert cloud is not None
    return sum(s.records for s in cloud.mapping_engine.stats() if ":kinesis:" in s.event_source_arn)


def test_stop_and_restart_mid_race_skips_nothing_and_counts_nothing_twice(tmp_path: Path) -> None:
    """Given a race whose first third is being aggregated and whose second third was just put
    (unconsumed, windows open) when localcloud stops, a restart from the same state folder
    followed by the last third ends with exact standings."""
    specs = plan(150, 15, seed=401, classes=(1, 2))
    messages = messages_of(specs)
    third = len(messages) // 3
    home = tmp_path / "home"

    with running_stack(home, persist=True, seed=19) as (stack, _):
        send(stack, messages[:third])
        wait_until(lambda: _consumed(stack) > 0, 30, "the first records to be aggregated")
        send(stack, messages[third : 2 * third])
        before_stop = _consumed(stack)
    assert before_stop < len(messages)

    with running_stack(home, persist=True, seed=23) as (stack, _):
        assert stack.cloud is not None and stack.cloud.restored
        send(stack, messages[2 * third :])
        drain(stack)
        assert_standings_match(stack, specs, messages)
