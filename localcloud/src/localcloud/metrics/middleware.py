"""The WSGI middleware that watches Kinesis, DynamoDB and SQS calls on their way to moto."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from localcloud.metrics import dynamodb, kinesis, sqs
from localcloud.metrics.aggregate import MetricAggregator
from localcloud.metrics.calls import StartResponse, call_app, json_call, send
from localcloud.server import WsgiApp

LOG = logging.getLogger(__name__)

# X-Amz-Target prefix -> the operations observed. DynamoDB Streams signs as "dynamodb" too, but
# its target prefix differs, so it is left alone.
_TARGETS = {
    "Kinesis_20131202": kinesis.OBSERVED,
    "DynamoDB_20120810": dynamodb.OBSERVED,
    "AmazonSQS": sqs.OBSERVED,
}


class ServiceMetrics:
    """A WSGI middleware (``app -> app``) recording AWS/Kinesis, AWS/DynamoDB and AWS/SQS metrics.

    Calls it does not observe pass straight through; observed ones are buffered (moto builds the
    whole body anyway) so the response can be read after the inner app answered.
    """

    def __init__(self, sink: MetricAggregator, region: str) -> None:
        self.region = region
        self.kinesis = kinesis.KinesisMetrics(sink)
        self.dynamodb = dynamodb.DynamoDBMetrics(sink)
        self.sqs = sqs.SqsMetrics(sink)

    def __call__(self, app: WsgiApp) -> WsgiApp:
        """Wrap ``app``."""

        def observed(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
            prefix, _, operation = environ.get("HTTP_X_AMZ_TARGET", "").partition(".")
            operations = _TARGETS.get(prefix)
            if operations is None or operation not in operations:
                return app(environ, start_response)
            call = json_call(environ, self.region)
            if call is None:
                return app(environ, start_response)
            size_before = self.dynamodb.before(call) if prefix == "DynamoDB_20120810" else 0
            started = time.perf_counter()
            answer = call_app(app, environ)
            elapsed_ms = (time.perf_counter() - started) * 1000
            try:
                if prefix == "Kinesis_20131202":
                    self.kinesis.observe(call, answer)
                elif prefix == "DynamoDB_20120810":
                    self.dynamodb.observe(call, answer, size_before, elapsed_ms)
                else:
                    self.sqs.observe(call, answer)
            except Exception:  # an odd request must never turn into a failed call because of metrics
                LOG.debug("could not record metrics for %s.%s", call.service, call.operation, exc_info=True)
            return send(environ, start_response, answer)

        return observed
