"""localcloud's suite-wide settings: fake AWS credentials, so no test can reach a real account."""

from __future__ import annotations

import os

for _key, _value in {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "POWERTOOLS_TRACE_DISABLED": "1",
}.items():
    os.environ.setdefault(_key, _value)
# A developer's AWS profile or endpoint override must never leak into the tests.
for _key in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
    os.environ.pop(_key, None)
