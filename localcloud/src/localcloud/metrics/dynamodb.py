"""AWS/DynamoDB metrics from the DynamoDB calls seen on the endpoint, with estimated capacity.

moto does not meter capacity, so consumed capacity is estimated the way DynamoDB bills it:

* **writes**: 1 WCU per started 1 KB of item size. PutItem uses the new item; UpdateItem the larger
  of the item before and after the update; DeleteItem the deleted item (both looked up in moto);
  BatchWriteItem puts count their item, deletes 1 WCU; TransactWriteItems counts twice.
* **reads**: 1 RCU per started 4 KB read with strong consistency, half with eventual consistency.
  GetItem / BatchGetItem round each item up; Query and Scan round the total of the *returned*
  items (DynamoDB counts every item it evaluated, before filters); TransactGetItems counts twice.
  A read that finds nothing still costs the minimum (1 or 0.5).

Item size: attribute name lengths plus value sizes (strings and binaries by their bytes, numbers
about one byte per two digits plus one, 1 byte for booleans and nulls, 3 bytes plus the elements
for lists and maps).
"""

from __future__ import annotations

import math
from typing import Any

from localcloud.aws import ACCOUNT_ID
from localcloud.metrics.aggregate import MetricAggregator, MetricId
from localcloud.metrics.calls import JsonAnswer, JsonCall, decoded_length

NAMESPACE = "AWS/DynamoDB"
_THROTTLES = frozenset(
    {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"}
)
_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})
_READS = frozenset({"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"})
OBSERVED = _WRITES | _READS


def attribute_size(value: Any) -> int:
    """Size in bytes of one attribute value in DynamoDB JSON (``{"S": "..."}``, ``{"N": "1"}``...)."""
    if not isinstance(value, dict) or len(value) != 1:
        return 0
    kind, inner = next(iter(value.items()))
    if kind == "S":
        return len(str(inner).encode())
    if kind == "N":
        digits = len(str(inner).lstrip("-").replace(".", "").strip("0")) or 1
        return (digits + 1) // 2 + 1
    if kind == "B":
        return decoded_length(str(inner))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(str(v).encode()) for v in inner)
    if kind == "NS":
        return sum(attribute_size({"N": v}) for v in inner)
    if kind == "BS":
        return sum(decoded_length(str(v)) for v in inner)
    if kind == "L":
        return 3 + sum(1 + attribute_size(v) for v in inner)
    if kind == "M":
        return 3 + sum(1 + len(str(k).encode()) + attribute_size(v) for k, v in inner.items())
    return 0


def item_size(item: Any) -> int:
    """Size in bytes of an item in DynamoDB JSON."""
    if not isinstance(item, dict):
        return 0
    return sum(len(str(name).encode()) + attribute_size(value) for name, value in item.items())


def write_units(size: int) -> float:
    """WCUs for writing an item of ``size`` bytes."""
    return float(max(1, math.ceil(size / 1024)))


def read_units(size: int, consistent: bool) -> float:
    """RCUs for reading ``size`` bytes."""
    units = max(1, math.ceil(size / 4096))
    return float(units) if consistent else units / 2


def _stored_size(region: str, table: str, key: Any) -> int:
    """The size of the stored item with ``key`` (0 when absent), read from moto in-process."""
    from moto.dynamodb.models import dynamodb_backends  # noqa: PLC0415 - moto is heavy

    try:
        item = dynamodb_backends[ACCOUNT_ID][region].get_item(table, key)
    except Exception:  # unknown table or malformed key: moto answers the call itself
        return 0
    return int(item.size()) if item is not None else 0


class DynamoDBMetrics:
    """Turns one observed DynamoDB call into samples."""

    def __init__(self, sink: MetricAggregator) -> None:
        self._sink = sink

    def before(self, call: JsonCall) -> int:
        """The stored size an UpdateItem or DeleteItem replaces (looked up before the call)."""
        if call.operation in ("UpdateItem", "DeleteItem"):
            return _stored_size(call.region, str(call.request.get("TableName", "")), call.request.get("Key"))
        return 0

    def observe(self, call: JsonCall, answer: JsonAnswer, size_before: int, elapsed_ms: float) -> None:
        """Record the metrics of one call."""
        op = call.operation
        request = call.request
        tables = _tables_of(op, request)
        if not tables:
            return
        samples: list[tuple[MetricId, float]] = []
        status = answer.status_code
        if status >= 400:
            code = answer.error_code()
            for table in tables:
                if code in _THROTTLES:
                    samples.append((_id("ThrottledRequests", "Count", table, op), 1.0))
                elif code == "ConditionalCheckFailedException":
                    samples.append((_id("ConditionalCheckFailedRequests", "Count", table), 1.0))
                elif status >= 500:
                    samples.append((_id("SystemErrors", "Count", table, op), 1.0))
            if status < 500 and code not in _THROTTLES and code != "ConditionalCheckFailedException":
                samples.append((MetricId(NAMESPACE, "UserErrors", (), "Count"), 1.0))
            self._sink.add_all(samples)
            return
        for table in tables:
            samples.append((_id("SuccessfulRequestLatency", "Milliseconds", table, op), elapsed_ms))
        if op in _WRITES:
            for table, units in _write_capacity(call, size_before).items():
                samples.append((_id("ConsumedWriteCapacityUnits", "Count", table), units))
        else:
            body = answer.json()
            for table, units in _read_capacity(op, request, body).items():
                samples.append((_id("ConsumedReadCapacityUnits", "Count", table), units))
            if op in ("Query", "Scan"):
                count = float(body.get("Count", len(body.get("Items", []))))
                samples.append((_id("ReturnedItemCount", "Count", tables[0], op), count))
        self._sink.add_all(samples)


def _id(name: str, unit: str, table: str, operation: str | None = None) -> MetricId:
    dimensions: tuple[tuple[str, str], ...] = (("TableName", table),)
    if operation is not None:
        dimensions = (("Operation", operation), ("TableName", table))
    return MetricId(NAMESPACE, name, dimensions, unit)


def _tables_of(op: str, request: dict[str, Any]) -> list[str]:
    if op in ("BatchWriteItem", "BatchGetItem"):
        return [str(t) for t in (request.get("RequestItems") or {})]
    if op in ("TransactWriteItems", "TransactGetItems"):
        names: list[str] = []
        for entry in request.get("TransactItems") or []:
            for action in entry.values() if isinstance(entry, dict) else ():
                name = action.get("TableName") if isinstance(action, dict) else None
                if name and name not in names:
                    names.append(str(name))
        return names
    name = request.get("TableName")
    return [str(name)] if name else []


def _write_capacity(call: JsonCall, size_before: int) -> dict[str, float]:
    op, request = call.operation, call.request
    if op == "PutItem":
        return {str(request["TableName"]): write_units(item_size(request.get("Item")))}
    if op == "UpdateItem":
        table = str(request["TableName"])
        after = _stored_size(call.region, table, request.get("Key"))
        return {table: write_units(max(size_before, after))}
    if op == "DeleteItem":
        return {str(request["TableName"]): write_units(size_before)}
    units: dict[str, float] = {}
    if op == "BatchWriteItem":
        for table, writes in (request.get("RequestItems") or {}).items():
            for write in writes:
                put = write.get("PutRequest") if isinstance(write, dict) else None
                size = item_size(put.get("Item")) if isinstance(put, dict) else 0
                units[table] = units.get(table, 0.0) + write_units(size)
        return units
    for entry in request.get("TransactItems") or []:  # TransactWriteItems: twice the units
        for kind, action in entry.items():
            size = item_size(action.get("Item")) if kind == "Put" else 0
            table = str(action.get("TableName", ""))
            units[table] = units.get(table, 0.0) + 2 * write_units(size)
    return units


def _read_capacity(op: str, request: dict[str, Any], body: dict[str, Any]) -> dict[str, float]:
    consistent = bool(request.get("ConsistentRead"))
    if op == "GetItem":
        return {str(request["TableName"]): read_units(item_size(body.get("Item")), consistent)}
    if op in ("Query", "Scan"):
        total = sum(item_size(item) for item in body.get("Items", []))
        return {str(request["TableName"]): read_units(total, consistent)}
    units: dict[str, float] = {}
    if op == "BatchGetItem":
        asked = request.get("RequestItems") or {}
        for table, items in (body.get("Responses") or {}).items():
            strong = bool((asked.get(table) or {}).get("ConsistentRead"))
            units[table] = sum(read_units(item_size(item), strong) for item in items)
        return units
    gets = [e.get("Get") or {} for e in request.get("TransactItems") or [] if isinstance(e, dict)]
    for get, response in zip(gets, body.get("Responses", []), strict=False):  # TransactGetItems
        table = str(get.get("TableName", ""))
        # Transactions are strongly consistent and cost twice the units.
        units[table] = units.get(table, 0.0) + 2 * read_units(item_size(response.get("Item")), True)
    return units
