"""The capacity planner's predictions against a local run, as ratios (planned / measured).

    .venv/bin/python bench/bench_plan.py [--quick]

For each size the validation covers (1,000 racers plain and 10,000 KPL-aggregated, on one shard
and on two), races run through the local stack (``ShardCount=2``, 2 s windows) and
:mod:`alleycat.plan_validation` compares ``alleycat plan``'s records/s, bytes/s, item writes, write
units per item, merges and publishes per window with what localcloud's CloudWatch metrics recorded
in the same run. Each figure is ``plan_<figure>_ratio_<size>``, e.g. ``plan_writes_ratio_10k_2shards``:
1.0 is a perfect prediction, above 1 the plan overstates. The tolerances and why they are what they
are: ``alleycat.plan_validation.TOLERANCES`` (also asserted by tests/integration/test_plan_validation.py).

``--quick`` runs the two-shard sizes only (the one-shard sizes differ by the number of races);
the full run takes about two minutes on a busy two-core machine.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from alleycat.plan_validation import SIZES, ratios, validate, validation_stack, warm_up  # noqa: E402


def run(quick: bool = False, log: Callable[[str], None] = print) -> dict[str, float]:
    """Every validated size's planned / measured ratios, plus how many figures were out of tolerance."""
    sizes = [s for s in SIZES if s.shards > 1] if quick else list(SIZES)
    with tempfile.TemporaryDirectory(prefix="alleycat-bench-plan-") as home:
        stack = validation_stack(Path(home))
        stack.start()
        try:
            warm_up(stack)
            results = validate(stack, sizes, log=log)
        finally:
            stack.stop()
    figures = ratios(results)
    figures["plan_figures_out_of_tolerance"] = float(sum(len(r.failures) for r in results))
    return figures


def main() -> None:
    """Run the validation and print the ratios."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="the two-shard sizes only")
    args = parser.parse_args()
    figures = run(args.quick, log=lambda line: print(line, file=sys.stderr, flush=True))
    width = max(map(len, figures))
    for name, value in figures.items():
        print(f"{name:<{width}}  {value:>8.3f}")


if __name__ == "__main__":
    main()
