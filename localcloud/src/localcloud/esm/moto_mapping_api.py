"""Make moto's CreateEventSourceMapping answer like Lambda's control plane does.

Compared with responses recorded on AWS, moto 5.2.5 accepts duplicate stream mappings, any
StartingPosition string, a timestamp with LATEST and a starting position on an SQS queue; it
answers a missing Kinesis stream with ResourceNotFoundException; and it leaves the stream
defaults (retries, record age, bisect, parallelization, window...) out of the mapping it returns.
:func:`patch` adds Lambda's validation (same codes, messages and status) and fills the defaults for
Kinesis and DynamoDB Streams mappings. Called by :func:`localcloud.esm.moto_compat.apply`.
"""

from __future__ import annotations

import json
from typing import Any

STARTING_POSITIONS = ("LATEST", "AT_TIMESTAMP", "TRIM_HORIZON")

# What Lambda reports for a stream mapping created without these parameters.
STREAM_DEFAULTS: dict[str, Any] = {
    "BisectBatchOnFunctionError": False,
    "DestinationConfig": {"OnFailure": {}},
    "FunctionResponseTypes": [],
    "LastProcessingResult": "No records processed",
    "MaximumBatchingWindowInSeconds": 0,
    "MaximumRecordAgeInSeconds": -1,
    "MaximumRetryAttempts": -1,
    "ParallelizationFactor": 1,
    "TumblingWindowInSeconds": 0,
}


def _service(arn: str) -> str:
    parts = arn.split(":")
    return parts[2] if len(parts) > 2 else ""


def _is_stream(arn: str) -> bool:
    return _service(arn) == "kinesis" or (_service(arn) == "dynamodb" and "/stream/" in arn)


def _is_pattern(raw: Any) -> bool:
    # A filter pattern is a non-empty JSON object whose leaves are non-empty lists of matchers;
    # Lambda rejects anything else at creation (a bare value or an empty list included).
    try:
        pattern = json.loads(raw)
    except (TypeError, ValueError):
        return False
    return isinstance(pattern, dict) and _is_pattern_object(pattern)


def _is_pattern_object(pattern: dict[str, Any]) -> bool:
    if not pattern:
        return False
    for value in pattern.values():
        if isinstance(value, dict):
            if not _is_pattern_object(value):
                return False
        elif not isinstance(value, list) or not value:
            return False
    return True


def _batch_window_error(arn: str, batch_size: Any, window: Any) -> str | None:
    # SQS: batches over 10 messages need a batching window (recorded on AWS).
    if _service(arn) == "sqs" and batch_size is not None and int(batch_size) > 10 and not window:
        return (
            "Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10"
        )
    return None


def validate(spec: dict[str, Any], existing: list[tuple[str, str, str]], stream_exists: bool) -> None:
    """Raise the error Lambda answers for ``spec``, if any.

    ``existing`` lists (uuid, function arn, event source arn) of the mappings already stored;
    ``stream_exists`` says whether a Kinesis source names a stream that exists.
    """
    from moto.awslambda.exceptions import LambdaClientError  # noqa: PLC0415 - moto is optional

    arn = str(spec.get("EventSourceArn") or "")
    position = spec.get("StartingPosition")
    timestamp = spec.get("StartingPositionTimestamp")
    if position is not None and position not in STARTING_POSITIONS:
        # Lambda checks the enum before anything else, for every kind of source.
        raise LambdaClientError(
            "ValidationException",
            f"1 validation error detected: Value '{position}' at 'startingPosition' failed to satisfy"
            f" constraint: Member must satisfy enum value set: [{', '.join(STARTING_POSITIONS)}]",
        )
    if _service(arn) == "sqs" and position is not None:
        raise LambdaClientError(
            "InvalidParameterValueException", "StartingPosition is not valid for SQS event sources."
        )
    if timestamp is not None and position != "AT_TIMESTAMP":
        raise LambdaClientError(
            "InvalidParameterValueException", "Timestamp only valid with StartingPosition AT_TIMESTAMP"
        )
    if _service(arn) == "dynamodb" and position == "AT_TIMESTAMP":
        raise LambdaClientError(
            "InvalidParameterValueException", f"Unsupported starting position for arn type: {arn}"
        )
    if _service(arn) == "kinesis" and not stream_exists:
        raise LambdaClientError("InvalidParameterValueException", f"Stream not found: {arn}")
    if position == "AT_TIMESTAMP" and timestamp is not None and float(timestamp) < 0:
        raise LambdaClientError(
            "InvalidParameterValueException",
            "Received Exception while reading from provided stream. "
            "class java.lang.Long can not be converted to a Timestamp",
        )
    for entry in (spec.get("FilterCriteria") or {}).get("Filters") or []:
        if not _is_pattern(entry.get("Pattern")):
            raise LambdaClientError("InvalidParameterValueException", "Invalid filter pattern definition.")
    window_error = _batch_window_error(arn, spec.get("BatchSize"), spec.get("MaximumBatchingWindowInSeconds"))
    if window_error:
        raise LambdaClientError("InvalidParameterValueException", window_error)
    if _is_stream(arn) or _service(arn) == "sqs":
        function = str(spec.get("FunctionArn") or spec.get("FunctionName") or "")
        name = function.rsplit(":", 1)[-1] if function.startswith("arn:") else function
        for uuid, function_arn, source_arn in existing:
            if source_arn == arn and function_arn.rsplit(":", 1)[-1] == name:
                pair = f'arn (" {arn} ") and function (" {name} ")'
                subject = (
                    f"An event source mapping with SQS {pair} already exists."
                    if _service(arn) == "sqs"
                    else f"The event source {pair} provided mapping already exists."
                )
                error = LambdaClientError(
                    "ResourceConflictException",
                    f"{subject} Please update or delete the existing mapping with UUID {uuid}",
                )
                error.code = 409
                raise error


def patch(backend_cls: Any, mapping_cls: Any, response_cls: Any, kinesis_backends: Any) -> None:
    """Patch moto's Lambda backend, mapping model and responses (process-wide)."""
    from moto.awslambda.exceptions import LambdaClientError  # noqa: PLC0415 - moto is optional

    original_create = backend_cls.create_event_source_mapping
    original_configuration = mapping_cls.get_configuration
    original_response = response_cls.create_event_source_mapping
    original_update_response = response_cls.update_event_source_mapping

    def create_event_source_mapping(self: Any, spec: dict[str, Any]) -> Any:
        arn = str(spec.get("EventSourceArn") or "")
        stream_exists = True
        if _service(arn) == "kinesis":
            streams = kinesis_backends[self.account_id][self.region_name].streams.values()
            stream_exists = any(stream.arn == arn for stream in streams)
        existing = [
            (m.uuid, m.function_arn, m.event_source_arn) for m in self._event_source_mappings.values()
        ]
        validate(spec, existing, stream_exists)
        try:
            return original_create(self, spec)
        except Exception as error:
            # moto answers an unknown stream with ResourceNotFoundException; Lambda with this.
            if _is_stream(arn) and "Invalid EventSourceArn" in str(getattr(error, "message", error)):
                raise LambdaClientError(
                    "InvalidParameterValueException", f"Stream not found: {arn}"
                ) from error
            raise

    def get_configuration(self: Any) -> dict[str, Any]:
        configuration: dict[str, Any] = original_configuration(self)
        if _is_stream(self.event_source_arn):
            for key, value in STREAM_DEFAULTS.items():
                configuration.setdefault(key, value)
            configuration["StateTransitionReason"] = "User action"
        elif _service(self.event_source_arn) == "sqs":
            # What Lambda reports for an SQS mapping (its own defaults and wording).
            configuration.setdefault("FunctionResponseTypes", [])
            configuration.setdefault("MaximumBatchingWindowInSeconds", 0)
            configuration["StateTransitionReason"] = "USER_INITIATED"
        return configuration

    def create_response(self: Any) -> Any:
        _status, headers, body = original_response(self)
        # Lambda accepts the mapping asynchronously: 202 and State "Creating"; it becomes
        # "Enabled" (what Get/List report from then on) once the poller is set up.
        document = json.loads(body)
        if document.get("State") == "Enabled":
            document["State"] = "Creating"
        return 202, {**headers, "status": 202}, json.dumps(document)

    def update_response(self: Any) -> Any:
        status, headers, body = original_update_response(self)
        if status != 202 or "Enabled" not in (self.json_body or {}):
            return status, headers, body
        # Switching a mapping on or off answers with the transitional state, as on AWS.
        document = json.loads(body)
        transitional = {"Enabled": "Enabling", "Disabled": "Disabling"}
        document["State"] = transitional.get(document.get("State", ""), document.get("State"))
        return status, headers, json.dumps(document)

    original_update = backend_cls.update_event_source_mapping

    def update_event_source_mapping(self: Any, mapping_uuid: str, spec: dict[str, Any]) -> Any:
        mapping = self._event_source_mappings.get(mapping_uuid)
        if mapping is not None:
            window_error = _batch_window_error(
                mapping.event_source_arn,
                spec.get("BatchSize", mapping.batch_size),
                spec.get("MaximumBatchingWindowInSeconds", mapping.max_batch_window),
            )
            if window_error:
                raise LambdaClientError("InvalidParameterValueException", window_error)
        return original_update(self, mapping_uuid, spec)

    backend_cls.update_event_source_mapping = update_event_source_mapping
    backend_cls.create_event_source_mapping = create_event_source_mapping
    response_cls.update_event_source_mapping = update_response
    mapping_cls.get_configuration = get_configuration
    response_cls.create_event_source_mapping = create_response
