"""Fake AWS credentials (no test can reach a real account) and the pattern's shared code on sys.path."""

from __future__ import annotations

import os
import sys
from pathlib import Path

PATTERN = Path(__file__).resolve().parents[1]
# The shared layer (Lambda puts it under /opt/python) and the tests' own helpers.
for _path in (PATTERN / "src" / "shared", Path(__file__).resolve().parent):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

for _key, _value in {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "POWERTOOLS_TRACE_DISABLED": "1",
}.items():
    os.environ.setdefault(_key, _value)
for _key in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
    os.environ.pop(_key, None)
