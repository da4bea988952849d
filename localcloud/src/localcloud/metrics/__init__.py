"""localcloud metrics: AWS service metrics and embedded-metric-format logs, published to CloudWatch.

See README.md in this package. :class:`MetricsPublisher` is what :class:`localcloud.LocalCloud`
builds when ``metrics=True``.
"""

from __future__ import annotations

from localcloud.metrics.aggregate import Datum, MetricAggregator, MetricId, StatisticSet
from localcloud.metrics.emf import EmfSample, parse_emf
from localcloud.metrics.functions import FunctionMetrics
from localcloud.metrics.middleware import ServiceMetrics
from localcloud.metrics.publisher import MetricsPublisher

__all__ = [
    "Datum",
    "EmfSample",
    "FunctionMetrics",
    "MetricAggregator",
    "MetricId",
    "MetricsPublisher",
    "ServiceMetrics",
    "StatisticSet",
    "parse_emf",
]
