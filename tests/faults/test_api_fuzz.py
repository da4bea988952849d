"""The API fuzzed against its own OpenAPI document (schemathesis), over HTTP through API Gateway.

Valid and invalid requests for every operation: no answer is a 5xx, every answer is one the
document declares (status code, content type, headers and body schema), invalid requests are
refused, and every 4xx carries a JSON body with a ``message``. A small race is put first so some
generated ids hit real data.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from localcloud.faults import ErrorResponse, FaultInjector
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.result import Ok

from alleycat.stack import LocalStack
from tests.faults.support import drain, messages_of, outputs, plan, running_stack, send

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.xdist_group("faults-api-fuzz")]

# Examples per operation and generation mode: the API has five operations, so this bounds the
# test to a few hundred requests (well under a minute).
EXAMPLES = 30
# What every answer is checked for, besides the JSON message of a 4xx: schemathesis' own checks of
# the response against the document, and that a request the document forbids is refused. Left out:
# positive_data_acceptance (a cursor is opaque and signed, so a schema-valid string such as "0" is
# rightly a 400) and unsupported_method (API Gateway itself answers an undeclared method, 403
# "Missing Authentication Token" as on AWS, before the function is reached).
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalStack, FaultInjector]]:
    with running_stack(Path(tmp_path_factory.mktemp("faults-api-fuzz")), seed=31) as running:
        yield running


def test_fuzzed_requests_get_documented_answers(
    cloud: tuple[LocalStack, FaultInjector],
) -> None:
    """Given the API's own /openapi.json, schemathesis' positive and negative examples for every
    operation are answered without a server error, with a status code, content type and body the
    document declares for the operation, invalid requests are refused, and every client error
    explains itself."""
    stack, _ = cloud
    specs = plan(20, 3, seed=601, classes=(1, 2))
    send(stack, messages_of(specs))
    drain(stack)
    api = outputs(stack)["ApiUrl"]
    schema = schemathesis.openapi.from_url(f"{api}/openapi.json")
    results = list(schema.get_all_operations())
    # Every operation of the document must load: an invalid one would go untested.
    assert all(isinstance(result, Ok) for result in results), results
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) >= 4, [op.label for op in operations]

    statuses: Counter[tuple[str, int]] = Counter()
    session = requests.Session()
    for operation in operations:
        strategy = st.one_of(
            operation.as_strategy(schemathesis.GenerationMode.POSITIVE),
            operation.as_strategy(schemathesis.GenerationMode.NEGATIVE),
        )

        @given(case=strategy)
        @settings(
            max_examples=EXAMPLES * 2,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: schemathesis.Case[Any]) -> None:
            response = case.call(base_url=api, session=session, timeout=30)
            label = f"{case.method} {case.formatted_path}"
            statuses[(case.operation.label, response.status_code)] += 1
            case.validate_response(response, checks=CHECKS)
            if response.status_code >= 400:
                body = response.json()
                assert isinstance(body, dict) and isinstance(body.get("message"), str) and body["message"], (
                    f"{label}: {response.status_code} without a JSON message: {response.text[:300]}"
                )

        check()
    # Both kinds of answers were exercised: the fuzzing reached the handlers, not only the router.
    codes = {code for _, code in statuses}
    assert any(code < 300 for code in codes) and any(400 <= code < 500 for code in codes), statuses


def test_throttled_reads_get_documented_answers(cloud: tuple[LocalStack, FaultInjector]) -> None:
    """Given DynamoDB throttling every read of the API (after botocore's retries), each operation
    answers 503 with a Retry-After header, and that answer is one its document declares."""
    stack, injector = cloud
    api = outputs(stack)["ApiUrl"]
    schema = schemathesis.openapi.from_url(f"{api}/openapi.json")
    throttle = ErrorResponse(
        "dynamodb",
        {"GetItem", "Query"},
        code="ProvisionedThroughputExceededException",
        message="The level of configured provisioned throughput for the table was exceeded.",
    )
    session = requests.Session()
    with injector.active(throttle):
        for result in schema.get_all_operations():
            operation = result.ok()
            # A race id (and class id) that exists is beside the point: every read is refused.
            ids = {name: 1 for name in ("raceId", "racerId", "classId") if f"{{{name}}}" in operation.path}
            case = operation.Case(path_parameters=ids, query={})
            response = case.call(base_url=api, session=session, timeout=60)
            assert response.status_code == 503, (
                f"{operation.label}: {response.status_code} {response.text[:300]}"
            )
            assert response.headers.get("retry-after") == ["1"]
            # a 503 is the intended answer here: everything but "not a server error" is checked
            case.validate_response(response, checks=[c for c in CHECKS if c is not not_a_server_error])
    assert throttle.injected > 0
