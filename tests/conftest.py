"""Suite-wide settings: fake AWS credentials so no test can reach a real account."""

from __future__ import annotations

import os

import pytest

for _key, _value in {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "POWERTOOLS_TRACE_DISABLED": "1",
    "POWERTOOLS_METRICS_NAMESPACE": "AlleycatTests",
    "POWERTOOLS_SERVICE_NAME": "alleycat-tests",
}.items():
    os.environ.setdefault(_key, _value)
# A developer's AWS profile or endpoint override must never leak into the tests.
for _key in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
    os.environ.pop(_key, None)


@pytest.fixture
def lambda_context() -> object:
    """A minimal Lambda context for calling handlers directly."""

    class Context:
        function_name = "test-function"
        function_version = "$LATEST"
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
        memory_limit_in_mb = 512
        aws_request_id = "00000000-0000-0000-0000-000000000000"
        log_group_name = "/aws/lambda/test-function"
        log_stream_name = "stream"

        @staticmethod
        def get_remaining_time_in_millis() -> int:
            return 30_000

    return Context()
