"""Measure what the metrics and shard-limit middlewares add to each AWS call.

    python -m localcloud.metrics.overhead [--calls N]

Two views: the middlewares alone, in-process, around a stand-in for moto that answers at once
with a prepared response (their own cost per call); and whole calls through boto3 and the
endpoint with both switched on and off (what a client notices).
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import statistics
import time
from collections.abc import Callable, Iterable
from typing import Any

from localcloud.aws import ACCOUNT_ID, DEFAULT_REGION
from localcloud.cloud import LocalCloud
from localcloud.limits import ShardLimits, ShardLimitSettings
from localcloud.metrics.aggregate import MetricAggregator
from localcloud.metrics.middleware import ServiceMetrics
from localcloud.server import WsgiApp

_AUTH = f"AWS4-HMAC-SHA256 Credential=x/20260101/{DEFAULT_REGION}/kinesis/aws4_request, SignedHeaders=host"


def _summary(label: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[max(0, int(len(ordered) * 0.99) - 1)]
    return f"{label:<44} median {statistics.median(samples):7.3f} ms   p99 {p99:7.3f} ms"


def _environ(operation: str, request: dict[str, Any]) -> dict[str, Any]:
    body = json.dumps(request).encode()
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/",
        "CONTENT_TYPE": "application/x-amz-json-1.1",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_X_AMZ_TARGET": f"Kinesis_20131202.{operation}",
        "HTTP_AUTHORIZATION": _AUTH,
        "wsgi.input": io.BytesIO(body),
    }


def _environ_factory(operation: str, request: dict[str, Any]) -> Callable[[], dict[str, Any]]:
    return lambda: _environ(operation, request)


def _stand_in(response: dict[str, Any]) -> WsgiApp:
    body = json.dumps(response).encode()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "application/x-amz-json-1.1")])
        return [body]

    return app


def _time_app(app: WsgiApp, make_environ: Callable[[], dict[str, Any]], calls: int) -> list[float]:
    samples = []
    for _ in range(calls):
        environ = make_environ()
        started = time.perf_counter()
        b"".join(app(environ, lambda *_: None))
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def middleware_only(calls: int) -> None:
    """The middlewares' own cost around an instant stand-in for moto."""
    from moto.kinesis.models import kinesis_backends  # noqa: PLC0415
    from moto.kinesis.utils import compose_new_shard_iterator  # noqa: PLC0415

    backend = kinesis_backends[ACCOUNT_ID][DEFAULT_REGION]
    stream = backend.create_stream("overhead", shard_count=4)
    # Limits high enough never to refuse: this measures the bookkeeping, not the throttling.
    unlimited = ShardLimitSettings(1e12, 1e12, 1e12, 1e12)
    data = base64.b64encode(b"x" * 200).decode()
    put_records = {
        "StreamName": "overhead",
        "Records": [{"Data": data, "PartitionKey": f"k{i}"} for i in range(500)],
    }
    put_answer = {"FailedRecordCount": 0, "Records": [{"SequenceNumber": "1", "ShardId": "s"}] * 500}
    put_record = {"StreamName": "overhead", "Data": data, "PartitionKey": "k"}
    shard = next(iter(stream.shards.values()))
    iterator = compose_new_shard_iterator("overhead", shard, "TRIM_HORIZON", 0, None)  # type: ignore[arg-type]
    now = time.time()
    get_answer = {
        "Records": [
            {"Data": data, "PartitionKey": "k", "SequenceNumber": str(i), "ApproximateArrivalTimestamp": now}
            for i in range(1000)
        ],
        "NextShardIterator": iterator,
        "MillisBehindLatest": 0,
    }
    cases: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = [
        ("PutRecords (500 x 200 B)", "PutRecords", put_records, put_answer),
        ("PutRecord (200 B)", "PutRecord", put_record, {"SequenceNumber": "1", "ShardId": "s"}),
        ("GetRecords (1,000 x 200 B returned)", "GetRecords", {"ShardIterator": iterator}, get_answer),
    ]
    for label, operation, request, answer in cases:
        inner = _stand_in(answer)
        layers: list[tuple[str, WsgiApp]] = [
            ("bare", inner),
            ("limits", ShardLimits(settings=unlimited)(inner)),
            (
                "metrics + limits",
                ServiceMetrics(MetricAggregator(), DEFAULT_REGION)(ShardLimits(settings=unlimited)(inner)),
            ),
        ]
        for name, app in layers:
            samples = _time_app(app, _environ_factory(operation, request), calls)
            print(_summary(f"{label}: {name}", samples))
    backend.delete_stream(None, "overhead")


def through_endpoint(calls: int) -> None:
    """Whole calls through boto3 and moto, with the middlewares on and off."""
    for enabled in (False, True):
        with LocalCloud(shard_limits=enabled, metrics=enabled, metrics_interval_s=3600) as cloud:
            kinesis = cloud.client("kinesis")
            kinesis.create_stream(StreamName="overhead", ShardCount=4)
            # 100 records per call: well inside four shards' limits at this call rate.
            records = [{"Data": b"x" * 200, "PartitionKey": f"k{i}"} for i in range(100)]
            state = "on " if enabled else "off"
            samples = []
            for _ in range(calls):
                started = time.perf_counter()
                kinesis.put_record(StreamName="overhead", Data=b"x" * 200, PartitionKey="k")
                samples.append((time.perf_counter() - started) * 1000)
            print(_summary(f"HTTP PutRecord, middlewares {state}", samples))
            samples = []
            for _ in range(max(1, calls // 10)):
                started = time.perf_counter()
                kinesis.put_records(StreamName="overhead", Records=records)
                samples.append((time.perf_counter() - started) * 1000)
                time.sleep(0.1)
            print(_summary(f"HTTP PutRecords (100 x 200 B), middlewares {state}", samples))


def main() -> None:
    """Print both measurements."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    middleware_only(args.calls)
    through_endpoint(args.calls)


if __name__ == "__main__":
    main()
