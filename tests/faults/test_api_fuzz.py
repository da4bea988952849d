"""The API fuzzed against its own OpenAPI document (schemathesis), over HTTP through API Gateway.

Valid and invalid requests for every operation: no answer is a 5xx, and every 4xx carries a JSON
body with a ``message``. A small race is put first so some generated ids hit real data.
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
from localcloud.faults import FaultInjector
from schemathesis.core.result import Ok

from alleycat.stack import LocalStack
from tests.faults.support import drain, messages_of, outputs, plan, running_stack, send

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.xdist_group("faults-api-fuzz")]

# Examples per operation and generation mode: the API has five operations, so this bounds the
# test to a few hundred requests (well under a minute).
EXAMPLES = 30


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalStack, FaultInjector]]:
    with running_stack(Path(tmp_path_factory.mktemp("faults-api-fuzz")), seed=31) as running:
        yield running


def test_fuzzed_requests_get_no_5xx_and_json_messages_for_4xx(
    cloud: tuple[LocalStack, FaultInjector],
) -> None:
    """Given the API's own /openapi.json, schemathesis' positive and negative examples for every
    operation are answered without a server error, and every client error explains itself."""
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
            assert response.status_code < 500, f"{label}: {response.status_code} {response.text[:300]}"
            if response.status_code >= 400:
                body = response.json()
                assert isinstance(body, dict) and isinstance(body.get("message"), str) and body["message"], (
                    f"{label}: {response.status_code} without a JSON message: {response.text[:300]}"
                )

        check()
    # Both kinds of answers were exercised: the fuzzing reached the handlers, not only the router.
    codes = {code for _, code in statuses}
    assert any(code < 300 for code in codes) and any(400 <= code < 500 for code in codes), statuses
