"""Publishing what localcloud observed into moto's CloudWatch, on a background thread.

Samples are summed per metric and second (:mod:`localcloud.metrics.aggregate`) and sent with
PutMetricData as statistic sets at 1-second storage resolution, every ``interval_s`` and on stop.
Once a second the thread also samples gauges: Lambda ConcurrentExecutions and IteratorAge; SQS
queue depths are polled at each flush.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from localcloud.aws import ACCOUNT_ID, make_client
from localcloud.metrics.aggregate import Datum, MetricAggregator
from localcloud.metrics.functions import FunctionMetrics, sample_iterator_age
from localcloud.metrics.middleware import ServiceMetrics
from localcloud.metrics.sqs import sample_queue_depths

LOG = logging.getLogger(__name__)
# PutMetricData takes up to 1,000 metrics per call; stay well inside its 1 MB payload too.
_BATCH = 500


class MetricsPublisher:
    """Collects metrics from the endpoint middleware and the runtime, and publishes them.

    ``engine_stats`` returns the ESM engine's per-shard stats (for IteratorAge), if there is one.
    Data points it published are dropped from moto's CloudWatch after ``retention_s``: moto keeps
    every data point in memory and scans them all on each query.
    """

    def __init__(
        self,
        endpoint_url: str,
        region: str,
        *,
        interval_s: float = 5.0,
        engine_stats: Callable[[], list[Any]] | None = None,
        retention_s: float = 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.endpoint_url = endpoint_url
        self.region = region
        self.interval_s = interval_s
        self.aggregator = MetricAggregator(clock)
        self.middleware = ServiceMetrics(self.aggregator, region)
        self.functions = FunctionMetrics(self.aggregator)
        self._engine_stats = engine_stats
        self._stop = threading.Event()
        self._flush_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._clients: dict[str, Any] = {}
        self._retention_s = retention_s
        self._namespaces: set[str] = set()
        self._next_trim = 0.0
        self._restore_moto: Callable[[], None] | None = None
        self.published = 0

    def start(self) -> None:
        """Start the background thread."""
        if self._thread is not None:
            return
        self._restore_moto = _silence_moto_kinesis_metrics()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="localcloud-metrics", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and publish what is left."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        try:
            self.flush()
        finally:
            if self._restore_moto is not None:
                self._restore_moto()
                self._restore_moto = None

    def flush(self) -> int:
        """Sample the gauges and publish everything observed so far; returns the data points sent."""
        with self._flush_lock:
            self.sample_gauges()
            sample_queue_depths(self._client("sqs"), self.aggregator)
            data = self.aggregator.drain()
            sent = self._put(data)
            self.published += sent
            if time.monotonic() >= self._next_trim:
                self._next_trim = time.monotonic() + 60.0
                self.trim()
            return sent

    def trim(self) -> int:
        """Drop data points older than the retention from the namespaces published to; returns how many."""
        from moto.cloudwatch.models import cloudwatch_backends  # noqa: PLC0415 - moto is heavy

        data = cloudwatch_backends[ACCOUNT_ID][self.region].metric_data
        cutoff = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=self._retention_s)
        # One pass over what is there now, replaced in one slice assignment (atomic under the GIL),
        # so data points appended meanwhile by request threads are kept. Runs once a minute.
        end = len(data)
        mine = self._namespaces
        kept = [d for d in data[:end] if d.namespace not in mine or _naive(d.timestamp) >= cutoff]
        if len(kept) == end:
            return 0
        data[:end] = kept
        return end - len(kept)

    def sample_gauges(self) -> None:
        """Record this second's ConcurrentExecutions and IteratorAge."""
        self.functions.sample_concurrency()
        if self._engine_stats is not None:
            try:
                sample_iterator_age(self._engine_stats, self.aggregator)
            except Exception:  # the engine may be stopping
                LOG.debug("could not read the mapping engine's stats", exc_info=True)

    def _run(self) -> None:
        next_flush = time.monotonic() + self.interval_s
        while not self._stop.wait(min(1.0, self.interval_s)):
            try:
                if time.monotonic() >= next_flush:
                    self.flush()
                    next_flush = time.monotonic() + self.interval_s
                else:
                    self.sample_gauges()
            except Exception:
                LOG.warning("publishing metrics failed", exc_info=True)

    def _client(self, service: str) -> Any:
        client = self._clients.get(service)
        if client is None:
            client = self._clients[service] = make_client(service, self.endpoint_url, self.region)
        return client

    def _put(self, data: list[Datum]) -> int:
        by_namespace: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for datum in data:
            by_namespace[datum.metric.namespace].append(_metric_datum(datum))
        self._namespaces.update(by_namespace)
        cloudwatch = self._client("cloudwatch") if by_namespace else None
        sent = 0
        for namespace, items in by_namespace.items():
            for start in range(0, len(items), _BATCH):
                batch = items[start : start + _BATCH]
                try:
                    cloudwatch.put_metric_data(Namespace=namespace, MetricData=batch)  # type: ignore[union-attr]
                    sent += len(batch)
                except Exception:
                    LOG.warning("PutMetricData to %s failed; %d data points dropped", namespace, len(batch))
        return sent


def _naive(timestamp: datetime) -> datetime:
    """moto stores UTC timestamps without a zone; compare them that way."""
    if timestamp.tzinfo is None:
        return timestamp
    return timestamp.astimezone(UTC).replace(tzinfo=None)


def _metric_datum(datum: Datum) -> dict[str, Any]:
    stats = datum.stats
    return {
        "MetricName": datum.metric.name,
        "Dimensions": [{"Name": name, "Value": value} for name, value in datum.metric.dimensions],
        "Timestamp": datetime.fromtimestamp(datum.second, UTC),
        "StatisticValues": {
            "SampleCount": stats.count,
            "Sum": stats.total,
            "Minimum": stats.minimum,
            "Maximum": stats.maximum,
        },
        "Unit": datum.metric.unit,
        "StorageResolution": 1,
    }


def _silence_moto_kinesis_metrics() -> Callable[[], None]:
    """Stop moto's own IncomingRecords / IncomingBytes data points; returns the undo.

    moto writes one raw data point per put call; with localcloud publishing the same metrics
    they would be counted twice (and pile up in memory one per call).
    """
    from moto.kinesis.models import KinesisBackend  # noqa: PLC0415 - moto is heavy to import

    original = KinesisBackend.__dict__.get("_send_stream_metrics")
    if original is None:
        return lambda: None

    def quiet(self: Any, stream_name: str, incoming_bytes: int, incoming_records: int) -> None:
        return None

    KinesisBackend._send_stream_metrics = quiet  # type: ignore[method-assign]

    def restore() -> None:
        KinesisBackend._send_stream_metrics = original  # type: ignore[method-assign]

    return restore
