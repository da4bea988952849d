"""Logger, Metrics and Tracer, created once and shared by every handler.

Handlers stack the same decorators in the same order::

    @logger.inject_lambda_context
    @metrics.log_metrics
    @tracer.capture_lambda_handler
    def lambda_handler(event, context): ...

Service name and namespace come from POWERTOOLS_SERVICE_NAME / POWERTOOLS_METRICS_NAMESPACE.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
metrics = Metrics()
# A no-op unless the function runs with X-Ray active.
tracer = Tracer()

__all__ = ["logger", "metrics", "tracer"]
