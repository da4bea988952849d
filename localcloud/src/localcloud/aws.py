"""Small helpers shared by localcloud's modules: the fake account, credentials and boto3 clients."""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config

# moto's default account: every resource localcloud creates lives in it.
ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "us-east-1"
# Any non-empty values work against moto; they are fixed so nothing reads a real profile.
FAKE_ACCESS_KEY_ID = "localcloud"
FAKE_SECRET_ACCESS_KEY = "localcloud"

# Path-style S3 addressing: virtual-hosted buckets cannot resolve under 127.0.0.1.
_CLIENT_CONFIG = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2, "mode": "standard"})


_session_lock = threading.Lock()
_sessions: list[boto3.session.Session] = []


def make_client(service_name: str, endpoint_url: str, region: str = DEFAULT_REGION) -> Any:
    """Return a boto3 client for ``service_name`` pointed at the local endpoint with fake credentials."""
    # One shared session: it caches the parsed service models, which cost ~50 ms per client otherwise.
    # Sessions are not thread-safe, hence the lock; the clients themselves are.
    with _session_lock:
        if not _sessions:
            _sessions.append(boto3.session.Session())
        return _sessions[0].client(
            service_name,  # type: ignore[call-overload]
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=FAKE_ACCESS_KEY_ID,
            aws_secret_access_key=FAKE_SECRET_ACCESS_KEY,
            config=_CLIENT_CONFIG,
        )
