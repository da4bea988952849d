"""DynamoDB Time to Live: a background sweep deletes expired items, as DynamoDB's TTL process does.

DynamoDB deletes an item some time after the epoch-seconds Number in the table's TTL attribute has
passed ("typically within a few days"); the deletion is a REMOVE record on the table's stream whose
``userIdentity`` is ``{"type": "Service", "principalId": "dynamodb.amazonaws.com"}``, so stream
consumers can tell expiries from deletes made by callers. moto stores the TTL setting
(``UpdateTimeToLive``) but never expires anything, and ignores a CloudFormation table's
``TimeToLiveSpecification``; this module adds both.

Locally the delay is at most ``interval_s`` (seconds, not days), so tests can watch items expire.
What DynamoDB also does and this sweep copies: only Number attributes count (other types, missing
attributes and lists never expire an item), and expiry times more than five years in the past are
ignored. Items are still readable until the sweep removes them, as on AWS, where reads may return
expired items until they are deleted.

The sweep must not touch moto's tables while a request is using them (the endpoint serializes
DynamoDB calls with one lock). It therefore runs *as a DynamoDB request*: the background thread
sends a request with the private target :data:`SWEEP_TARGET` to the endpoint, and
:class:`TtlSweeper`, installed as a middleware, performs the sweep inside the endpoint's DynamoDB lock.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any

from localcloud.aws import ACCOUNT_ID, DEFAULT_REGION

LOG = logging.getLogger(__name__)

# An X-Amz-Target no AWS service uses: the endpoint routes it like a DynamoDB call (same lock),
# and the sweeper's middleware answers it.
SWEEP_TARGET = "LocalCloudTimeToLive.Sweep"
# How DynamoDB Streams' GetRecords shows a TTL deletion (Lambda events spell the keys lower-camel).
TTL_USER_IDENTITY = {"Type": "Service", "PrincipalId": "dynamodb.amazonaws.com"}
# DynamoDB ignores TTL values more than five years in the past (they are most likely not seconds).
_MAX_AGE_S = 5 * 365 * 24 * 3600
# The endpoint is on 127.0.0.1: never through a proxy from the environment.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def expired_at(item: Any, attribute: str) -> float | None:
    """The item's expiry time (epoch seconds) if its TTL attribute is a Number, else None."""
    value = item.attrs.get(attribute)
    if value is None or getattr(value, "type", None) != "N":
        return None
    try:
        return float(value.value)
    except (TypeError, ValueError):
        return None


def sweep_tables(region: str, now: float) -> int:
    """Delete every expired item of every TTL-enabled table in ``region``; returns how many.

    Must run while no request uses moto's DynamoDB backend (see the module docstring).
    """
    # Imported here: moto is heavy and only needed once a cloud runs.
    from moto.dynamodb.models import dynamodb_backends  # noqa: PLC0415

    deleted = 0
    for table in list(dynamodb_backends[ACCOUNT_ID][region].tables.values()):
        ttl = getattr(table, "ttl", {}) or {}
        attribute = ttl.get("AttributeName")
        if ttl.get("TimeToLiveStatus") != "ENABLED" or not attribute:
            continue
        expired = [
            item
            for item in table.all_items()
            if (at := expired_at(item, attribute)) is not None and now - _MAX_AGE_S <= at <= now
        ]
        for item in expired:
            if table.delete_item(item.hash_key, item.range_key) is None:
                continue
            deleted += 1
            shard = getattr(table, "stream_shard", None)
            if shard is not None and shard.items:
                # delete_item just appended this item's REMOVE record: mark it as the service's.
                shard.items[-1].record["userIdentity"] = dict(TTL_USER_IDENTITY)
    return deleted


class TtlSweeper:
    """Expires DynamoDB items every ``interval_s`` seconds; a WSGI middleware on the endpoint.

    ``swept`` counts the items deleted so far. :meth:`sweep` runs one sweep now and waits for it.
    """

    def __init__(
        self, region: str = DEFAULT_REGION, interval_s: float = 1.0, clock: Callable[[], float] = time.time
    ) -> None:
        self.region = region
        self.interval_s = interval_s
        self._clock = clock
        self._endpoint_url: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._count_lock = threading.Lock()
        self.swept = 0

    # -- the middleware ------------------------------------------------------------------------
    def __call__(self, app: WsgiApp) -> WsgiApp:
        """Wrap the endpoint's app: the private sweep target is answered here, all else passes."""

        def middleware(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            if environ.get("HTTP_X_AMZ_TARGET") != SWEEP_TARGET:
                return app(environ, start_response)
            deleted = sweep_tables(self.region, self._clock())
            with self._count_lock:
                self.swept += deleted
            body = json.dumps({"Deleted": deleted}).encode()
            start_response(
                "200 OK",
                [("Content-Type", "application/x-amz-json-1.0"), ("Content-Length", str(len(body)))],
            )
            return [body]

        return middleware

    # -- the background thread -----------------------------------------------------------------
    def start(self, endpoint_url: str) -> None:
        """Sweep through ``endpoint_url`` every ``interval_s`` until :meth:`stop`."""
        self._endpoint_url = endpoint_url
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="dynamodb-ttl-sweep", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop sweeping (a sweep in progress finishes)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def sweep(self) -> int:
        """Run one sweep now, through the endpoint (so inside its DynamoDB lock); items deleted."""
        if self._endpoint_url is None:
            raise RuntimeError("the TTL sweeper is not started")
        request = urllib.request.Request(
            self._endpoint_url,
            data=b"{}",
            method="POST",
            headers={
                "Content-Type": "application/x-amz-json-1.0",
                "X-Amz-Target": SWEEP_TARGET,
                # Only the credential scope matters: it routes the call as a DynamoDB one.
                "Authorization": (
                    f"AWS4-HMAC-SHA256 Credential=localcloud/20000101/{self.region}/dynamodb/aws4_request, "
                    "SignedHeaders=host, Signature=0"
                ),
            },
        )
        with _DIRECT.open(request, timeout=30) as answer:
            return int(json.loads(answer.read()).get("Deleted", 0))

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.sweep()
            except Exception:  # the endpoint stopping, an injected fault: try again next time
                LOG.debug("TTL sweep failed", exc_info=True)


def apply_cloudformation_ttl() -> None:
    """Make moto's CloudFormation honour a table's ``TimeToLiveSpecification`` (once per process)."""
    from moto.dynamodb.models.table import Table  # noqa: PLC0415

    if getattr(Table, "_localcloud_ttl", False):
        return
    original = Table.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]

    def create_from_cloudformation_json(
        cls: Any, resource_name: str, cloudformation_json: dict[str, Any], *args: Any, **kwargs: Any
    ) -> Any:
        table = original(cls, resource_name, cloudformation_json, *args, **kwargs)
        spec = cloudformation_json.get("Properties", {}).get("TimeToLiveSpecification")
        if isinstance(spec, dict) and spec.get("AttributeName"):
            enabled = str(spec.get("Enabled", False)).lower() == "true"
            table.ttl = {
                "TimeToLiveStatus": "ENABLED" if enabled else "DISABLED",
                "AttributeName": spec["AttributeName"],
            }
        return table

    Table.create_from_cloudformation_json = classmethod(create_from_cloudformation_json)  # type: ignore[assignment,method-assign]
    Table._localcloud_ttl = True  # type: ignore[attr-defined]
