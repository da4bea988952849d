"""localcloud stopped and started again mid-race, with its state folder.

State on stop: moto's backends (the stream's records, the table) and the mapping engine's
checkpoints with each shard's open tumbling window. After the restart the mapping resumes after the
checkpoint with the window's state: records not yet consumed are not skipped, and records already
merged are not merged again (or, if a batch was in flight, merged again idempotently).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from localcloud.esm.stats import ShardStats
from localcloud.faults import ErrorResponse

from alleycat.stack import LocalStack
from tests.faults.support import (
    assert_standings_match,
    drain,
    messages_of,
    outputs,
    plan,
    running_stack,
    send,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.xdist_group("faults-restart")]


def _stream_stats(stack: LocalStack) -> list[ShardStats]:
    """The stream mapping's per-shard stats (the aggregator's; the table stream's are left out)."""
    assert stack.cloud is not None
    return [s for s in stack.cloud.mapping_engine.stats() if ":kinesis:" in s.event_source_arn]


def _windows_closed(stack: LocalStack) -> int:
    """Window-final invocations that succeeded: windows merged into the table."""
    return sum(s.window_final_invocations for s in _stream_stats(stack))


def _records_after_checkpoints(stack: LocalStack) -> int:
    """Records on the stream after each shard's checkpoint: put, but not consumed by the mapping.

    A checkpoint is the sequence number up to which every record was handed to a successful
    invocation; reading the shard after it, with a client of our own, counts what is left.
    """
    assert stack.cloud is not None
    kinesis = stack.cloud.client("kinesis")
    stream = outputs(stack)["StreamName"]
    left = 0
    for shard in _stream_stats(stack):
        position: dict[str, Any] = {"ShardIteratorType": "TRIM_HORIZON"}
        if shard.checkpoint is not None:
            position = {
                "ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
                "StartingSequenceNumber": shard.checkpoint,
            }
        iterator = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard.shard_id, **position)
        iterator = iterator["ShardIterator"]
        while iterator:
            page = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
            if not page["Records"]:
                break
            left += len(page["Records"])
            iterator = page.get("NextShardIterator")
    return left


def test_stop_and_restart_mid_race_skips_nothing_and_counts_nothing_twice(tmp_path: Path) -> None:
    """Given a race whose first third is being aggregated and whose second third was just put
    (unconsumed, windows open) when localcloud stops, a restart from the same state folder
    followed by the last third ends with exact standings.

    To stop at that moment on any machine, the aggregator's merges are refused (AccessDenied on its
    read of the race's buckets) once a first window has been merged: the next window's final
    invocation then fails and is retried, so the window stays open and the shard does not move past
    it. The second third's later half arrives after that window's end, so it stays on the stream.
    """
    specs = plan(150, 15, seed=401, classes=(1, 2))
    messages = messages_of(specs)
    third = len(messages) // 3
    half = third + third // 2
    home = tmp_path / "home"

    with running_stack(home, persist=True, seed=19) as (stack, injector):
        send(stack, messages[:third])
        wait_until(lambda: _windows_closed(stack) > 0, 60, "a first window to be merged")
        merged_before = _windows_closed(stack)
        # BatchGetItem: the merge's read of the race's buckets, which nothing else in the stack uses.
        refuse_merges = ErrorResponse(
            "dynamodb",
            {"BatchGetItem"},
            code="AccessDeniedException",
            message="held by the test: the window stays open",
        )
        injector.add(refuse_merges)
        send(stack, messages[third:half])
        wait_until(lambda: refuse_merges.injected > 0, 60, "a window's merge to be refused")
        send(stack, messages[half : 2 * third])
        # Read before the stop: a window is open (its merge failed and none succeeded since), and
        # records put before the stop are still on the stream past the checkpoint.
        open_windows = refuse_merges.injected > 0 and _windows_closed(stack) == merged_before
        unconsumed = _records_after_checkpoints(stack)
        stack.stop()  # with the merges still refused, so nothing moves between the reading and the stop
    assert open_windows, "no window was open when localcloud stopped"
    assert unconsumed >= 2 * third - half, f"only {unconsumed} records were left unconsumed"

    with running_stack(home, persist=True, seed=23) as (stack, _):
        assert stack.cloud is not None and stack.cloud.restored
        # The restart resumes at the checkpoint: it reads exactly the records left on the stream
        # (none again, none skipped) and merges the window it restored.
        drain(stack)
        assert sum(s.records for s in _stream_stats(stack)) == unconsumed
        assert _windows_closed(stack) >= 1
        send(stack, messages[2 * third :])
        drain(stack)
        assert_standings_match(stack, specs, messages)
