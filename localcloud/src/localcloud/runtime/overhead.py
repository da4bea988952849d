"""Measure the runtime's per-invocation overhead with a no-op handler.

    python -m localcloud.runtime.overhead [--invocations N]

It deploys a one-function stack whose handler returns at once, warms it, then times sequential
invocations through ``LocalCloud.invoke`` (runtime only) and through the Lambda Invoke API
(boto3 → moto's HTTP server → runtime). The handler's own time is negligible, so the figures are
localcloud's overhead per call.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from localcloud.cloud import LocalCloud

_TEMPLATE = """\
Transform: AWS::Serverless-2016-10-31
Resources:
  Noop:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: noop.handler
      Runtime: python3.11
Outputs:
  Name:
    Value: !Ref Noop
"""


def _timed(call: Callable[[], object], count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def _summary(label: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[int(len(ordered) * 0.99) - 1]
    return (
        f"{label:<28} mean {statistics.fmean(samples):6.3f} ms   median {statistics.median(samples):6.3f} ms"
        f"   p99 {p99:6.3f} ms   ({len(samples)} calls)"
    )


def main() -> None:
    """Print mean / median / p99 overhead per invocation."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--invocations", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "src").mkdir()
        (root / "src" / "noop.py").write_text("def handler(event, context):\n    return None\n")
        (root / "template.yaml").write_text(_TEMPLATE)
        with LocalCloud() as cloud:
            name = cloud.deploy(root / "template.yaml", "overhead").outputs["Name"]
            event = {"racerId": 101, "cadence": 72, "resistance": 55}
            cold = _timed(lambda: cloud.invoke(name, event), 1)[0]
            direct = _timed(lambda: cloud.invoke(name, event), args.invocations)
            client = cloud.client("lambda")
            payload = b'{"racerId": 101, "cadence": 72, "resistance": 55}'
            api = _timed(
                lambda: client.invoke(FunctionName=name, Payload=payload)["Payload"].read(),  # noqa: PLW0108 - a new call each time
                max(1, args.invocations // 4),
            )
    print(f"cold start (worker spawn + import): {cold:.1f} ms")
    print(_summary("LocalCloud.invoke (warm)", direct))
    print(_summary("Lambda Invoke API (warm)", api))


if __name__ == "__main__":
    main()
