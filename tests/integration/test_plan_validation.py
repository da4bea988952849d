"""The planner's predictions against what localcloud's CloudWatch metrics record in the same run.

For each size ``make bench`` runs — 1,000 racers (plain records) and 10,000 racers (KPL-aggregated,
compressed batches), on one shard and on two — races run through the local stack for a few 2 s
windows (9 s, five windows; 10,000 racers 5 s, three); then the planner is asked about the same
size, and its records/s, bytes/s, item writes, write units per item, merges and publishes per
window are compared with ``AWS/Kinesis``, ``AWS/DynamoDB`` and the functions' metrics for exactly
that run.

The tolerances, each with the reason the model and the measurement differ, live beside the
measurement in :data:`alleycat.plan_validation.TOLERANCES` (``bench/bench_plan.py`` prints the same
ratios). One stack (``ShardCount=2``) serves every size; the sizes run one after another, each
reading the metrics of its own seconds only. A run
that falls more than a window behind 1 Hz (a machine too busy to send 10,000 messages a second) is
repeated once; late twice, its per-window figures are reported with a warning, not held.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from alleycat.plan_validation import (
    SIZES,
    ValidationSize,
    compare,
    measure_paced,
    plan_for,
    validation_stack,
    warm_up,
)
from alleycat.stack import LocalStack

# One stack for the module: its sizes must run on one worker (--dist loadgroup), one after another.
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.xdist_group("plan-validation")]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    local = validation_stack(Path(tmp_path_factory.mktemp("plan-validation")))
    local.start()
    try:
        warm_up(local)
        yield local
    finally:
        local.stop()


@pytest.mark.parametrize("size", SIZES, ids=lambda size: size.label)
def test_planner_predictions_match_the_metrics_of_a_local_run(
    stack: LocalStack, size: ValidationSize
) -> None:
    # Given the planner's answer for this size
    plan = plan_for(size)
    # When the same size races through the local stack (once more if it fell behind 1 Hz)
    measured = measure_paced(stack, size)
    # Then nothing was lost, and every figure is within its stated tolerance
    figures = compare(size, plan, measured)
    print(  # the figures, with -s
        f"\n{size.label} ({measured.elapsed_s:.1f} s, {measured.windows} windows, lateness "
        f"{measured.lateness_s:.2f} s): " + "; ".join(f.describe() for f in figures)
    )
    if any(not f.held for f in figures):
        # Twice more than a window behind: the machine, not the model (see MAX_LATENESS_S).
        warnings.warn(
            f"{size.label}: handed over {measured.lateness_s:.1f} s late in two runs; its per-window "
            "figures were reported, not held",
            stacklevel=1,
        )
    assert measured.failed == 0, f"{measured.failed} records failed"
    failures = [f"{f.describe()}: {f.tolerance.why}" for f in figures if not f.ok]
    assert not failures, "\n".join(failures)
