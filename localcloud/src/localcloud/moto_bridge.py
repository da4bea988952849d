"""Where moto would run a Lambda function, localcloud's runtime runs it instead.

moto runs handler code only in Docker. It also drives event source mappings itself, with one
synchronous invoke per message — and for DynamoDB Streams it then empties the stream. So, while a
:class:`MotoBridge` is installed:

* the Lambda ``Invoke`` API (RequestResponse, Event, DryRun) runs functions in localcloud's runtime;
* SNS deliveries to ``lambda`` subscriptions, S3 notifications to functions and EventBridge rule
  targets (which moto does not deliver to Lambda at all) become asynchronous invocations
  (Lambda's async semantics, with retries);
* moto's own SQS / Kinesis / DynamoDB-Streams mapping triggers are detached, because localcloud's
  pollers (and the ESM engine) drive those mappings with AWS semantics.

The patches are installed once per process and are inert while no bridge is active.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import itertools
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol, cast
from urllib.parse import quote_plus

from moto.awslambda.models import LambdaBackend, LambdaFunction, LayerVersion
from moto.core.exceptions import JsonRESTError
from moto.dynamodb.models import dynamodb_backends
from moto.events import notifications as events_notifications
from moto.events.models import Rule
from moto.events.utils import EventTemplateParser
from moto.kinesis.models import kinesis_backends
from moto.s3 import notifications as s3_notifications
from moto.sns.models import Subscription
from moto.sqs.models import sqs_backends

from localcloud.invocation import InvocationResult, TooManyRequestsError

LOG = logging.getLogger(__name__)


class FunctionDispatcher(Protocol):
    """What the bridge needs from localcloud: synchronous and asynchronous invocation."""

    def invoke(self, function: str, event: Any) -> InvocationResult:
        """Run the function and wait for its result."""
        ...

    def invoke_async(self, function: str, event: Any, source: str) -> None:
        """Queue an asynchronous (Event) invocation."""
        ...


class _BridgeState:
    """Which dispatcher is active, and whether moto is patched yet."""

    def __init__(self) -> None:
        self.dispatcher: FunctionDispatcher | None = None
        self.installed = False
        self.lock = threading.Lock()


_state = _BridgeState()


def _active() -> FunctionDispatcher | None:
    return _state.dispatcher


def activate(dispatcher: FunctionDispatcher) -> None:
    """Route moto's function invocations to ``dispatcher`` (installs the patches on first use)."""
    _install()
    _state.dispatcher = dispatcher


def deactivate(dispatcher: FunctionDispatcher) -> None:
    """Stop routing to ``dispatcher`` (moto's own behaviour returns)."""
    if _state.dispatcher is dispatcher:
        _state.dispatcher = None


def sns_lambda_event(
    subscription_arn: str,
    topic_arn: str,
    message: str,
    message_id: str,
    *,
    subject: str | None,
    message_attributes: dict[str, Any] | None,
) -> dict[str, Any]:
    """The event Lambda receives for one SNS notification."""
    timestamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    attributes = {
        name: {"Type": value.get("Type", "String"), "Value": value.get("Value")}
        for name, value in (message_attributes or {}).items()
    }
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": subscription_arn,
                "Sns": {
                    "Type": "Notification",
                    "MessageId": message_id,
                    "TopicArn": topic_arn,
                    "Subject": subject,
                    "Message": message,
                    "Timestamp": timestamp,
                    "SignatureVersion": "1",
                    "Signature": "EXAMPLE",
                    "SigningCertUrl": "https://sns.amazonaws.com/localcloud.pem",
                    "UnsubscribeUrl": f"https://sns.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={subscription_arn}",
                    "MessageAttributes": attributes,
                },
            }
        ]
    }


def detach_builtin_pollers() -> None:
    """Empty moto's per-queue / per-table / per-stream mapping hooks in every account and region."""

    sqs: Any
    dynamodb: Any
    kinesis: Any
    for _, _, sqs in sqs_backends.iter_backends():
        for queue in sqs.queues.values():
            queue.lambda_event_source_mappings.clear()
    for _, _, dynamodb in dynamodb_backends.iter_backends():
        for table in dynamodb.tables.values():
            if hasattr(table, "lambda_event_source_mappings"):
                table.lambda_event_source_mappings.clear()
    for _, _, kinesis in kinesis_backends.iter_backends():
        for stream in kinesis.streams.values():
            stream.lambda_event_source_mappings.clear()


def rule_target_event(target: dict[str, Any], event: dict[str, Any]) -> Any:
    """What a Lambda target of an EventBridge rule receives: ``Input``, ``InputPath`` or the event."""
    if target.get("Input"):
        return json.loads(target["Input"])
    delivered = {key: value for key, value in event.items() if key != "ingestion-time"}
    if isinstance(delivered.get("time"), int | float):
        # moto keeps epoch seconds; EventBridge delivers ISO-8601 UTC.
        delivered["time"] = datetime.fromtimestamp(delivered["time"], UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    transformer = target.get("InputTransformer")
    if transformer:
        return EventTemplateParser.parse(
            input_template=transformer.get("InputTemplate"),
            input_paths_map=transformer.get("InputPathsMap", {}),
            event=cast(Any, delivered),
        )
    path = target.get("InputPath")
    if isinstance(path, str) and path.startswith("$"):
        value: Any = delivered
        for part in [p for p in path[1:].split(".") if p]:
            value = value.get(part) if isinstance(value, dict) else None
        return value
    return delivered


def _install() -> None:
    with _state.lock:
        if _state.installed:
            return
        _patch_invoke()
        _patch_sns()
        _patch_s3()
        _patch_events()
        _patch_rules()
        _patch_mappings()
        _patch_layers()
        _patch_rotation()
        _state.installed = True


def _patch_rotation() -> None:
    """``RotateSecret`` without a function uses the secret's configured one, as on AWS.

    moto forgets the configured rotation function when a call names none (so a later
    ``rotate-secret --secret-id X`` just moved AWSCURRENT onto an empty version, invoking nothing).
    """
    from moto.secretsmanager.models import SecretsManagerBackend  # noqa: PLC0415 - moto is heavy

    original = SecretsManagerBackend.rotate_secret

    def rotate_secret(self: Any, secret_id: str, *args: Any, **kwargs: Any) -> str:
        if not kwargs.get("rotation_lambda_arn") and len(args) < 2:
            with contextlib.suppress(Exception):  # an unknown secret: moto raises its own error below
                configured = getattr(self.describe_secret(secret_id), "rotation_lambda_arn", "")
                if configured:
                    kwargs["rotation_lambda_arn"] = configured
        return str(original(self, secret_id, *args, **kwargs))

    SecretsManagerBackend.rotate_secret = rotate_secret  # type: ignore[method-assign]


def _patch_invoke() -> None:

    original = LambdaFunction.invoke

    def invoke(self: Any, body: str, request_headers: Any, response_headers: Any) -> str | bytes:
        dispatcher = _active()
        if dispatcher is None:
            return original(self, body, request_headers, response_headers)
        event = json.loads(body) if body else {}
        invocation_type = request_headers.get("x-amz-invocation-type", "RequestResponse")
        if invocation_type == "DryRun":
            return b""
        if invocation_type == "Event":
            dispatcher.invoke_async(self.function_arn, event, "lambda:InvokeAsync")
            return b""
        try:
            result = dispatcher.invoke(self.function_arn, event)
        except TooManyRequestsError as exc:
            error = JsonRESTError("TooManyRequestsException", str(exc))
            error.code = 429
            raise error from exc
        if result.function_error:
            response_headers["x-amz-function-error"] = result.function_error
        response_headers["x-amz-executed-version"] = "$LATEST"
        response_headers["x-amz-log-result"] = base64.b64encode(result.log_tail.encode()).decode()
        return json.dumps(result.payload).encode()

    LambdaFunction.invoke = invoke  # type: ignore[method-assign]


def _patch_sns() -> None:

    original = Subscription.publish

    def publish(self: Any, message: str, message_id: str, *args: Any, **kwargs: Any) -> None:
        dispatcher = _active()
        if dispatcher is None or self.protocol != "lambda":
            original(self, message, message_id, *args, **kwargs)
            return
        subject = kwargs.get("subject", args[0] if args else None)
        attributes = kwargs.get("message_attributes", args[1] if len(args) > 1 else None)
        matcher = getattr(self, "_filter_policy_matcher", None)
        if matcher is not None and not matcher.matches(attributes, message):
            return
        if kwargs.get("message_structure") == "json":
            # The "lambda" key of a structured message, else its "default".
            message = self._parse_message_structure(message, "lambda")
        event = sns_lambda_event(
            self.arn, self.topic.arn, message, message_id, subject=subject, message_attributes=attributes
        )
        dispatcher.invoke_async(self.endpoint, event, "sns")

    Subscription.publish = publish  # type: ignore[method-assign]


def _patch_s3() -> None:

    original: Callable[..., None] = s3_notifications._invoke_awslambda

    def invoke_awslambda(account_id: str, event_body: Any, fn_arn: str, region_name: str) -> None:
        dispatcher = _active()
        if dispatcher is None:
            original(account_id, event_body, fn_arn, region_name)
            return
        dispatcher.invoke_async(fn_arn, event_body, "s3")

    s3_notifications._invoke_awslambda = invoke_awslambda

    original_event: Callable[..., dict[str, Any]] = s3_notifications._get_s3_event

    def get_s3_event(event_name: str, bucket: Any, key: Any, notification_id: str) -> dict[str, Any]:
        event = original_event(event_name, bucket, key, notification_id)
        if _active() is not None:
            _complete_s3_event(event, bucket, key)
        return event

    s3_notifications._get_s3_event = get_s3_event

    original_sns: Callable[..., None] = s3_notifications._send_sns_message

    def send_sns_message(account_id: str, event_body: Any, topic_arn: str, region_name: str) -> None:
        if _active() is None:
            original_sns(account_id, event_body, topic_arn, region_name)
            return
        from moto.sns.models import sns_backends  # noqa: PLC0415

        try:
            # S3's notifications through SNS carry this subject on AWS.
            sns_backends[account_id][region_name].publish(
                arn=topic_arn, message=json.dumps(event_body), subject="Amazon S3 Notification"
            )
        except Exception:  # asynchronous on AWS: the upload itself never fails because of it
            LOG.warning("S3 notification to %s not delivered", topic_arn, exc_info=True)

    s3_notifications._send_sns_message = send_sns_message


# S3's sequencer only grows for a key; a process-wide counter keeps that.
_s3_sequencer = itertools.count(int(time.time() * 1000) << 16)


def _complete_s3_event(event: dict[str, Any], bucket: Any, key: Any) -> None:
    """Fill in the parts of AWS's S3 event record moto leaves out, and encode the key as S3 does."""
    for record in event.get("Records", []):
        s3 = record["s3"]
        # S3 URL-encodes the key with spaces as "+" but leaves "/" alone (moto also encodes "/").
        s3["object"]["key"] = quote_plus(key.name, safe="/")
        s3["object"]["sequencer"] = f"{next(_s3_sequencer):018X}"
        if getattr(key, "version_id", None) and getattr(bucket, "is_versioned", False):
            s3["object"]["versionId"] = key.version_id
        s3["bucket"].setdefault("ownerIdentity", {"principalId": _S3_PRINCIPAL})
        record.setdefault("userIdentity", {"principalId": f"AWS:{_S3_PRINCIPAL}"})
        record.setdefault("requestParameters", {"sourceIPAddress": "127.0.0.1"})
        request_id = uuid.uuid4().hex[:16].upper()
        record.setdefault(
            "responseElements",
            {"x-amz-request-id": request_id, "x-amz-id-2": base64.b64encode(os.urandom(48)).decode()},
        )


_S3_PRINCIPAL = "A1LOCALCLOUDEXAMPLE"


def _patch_events() -> None:

    original: Callable[..., None] = events_notifications._invoke_lambda

    def invoke_lambda(account_id: str, fn_arn: str, event: Any) -> None:
        dispatcher = _active()
        if dispatcher is None:
            original(account_id, fn_arn, event)
            return
        dispatcher.invoke_async(fn_arn, event, "events")

    events_notifications._invoke_lambda = invoke_lambda


def _patch_rules() -> None:
    original = Rule.send_to_targets

    def send_to_targets(self: Any, original_event: Any, transform_input: bool = True) -> None:
        # moto delivers to logs, SQS and buses but raises on Lambda targets: it gets a copy of the
        # rule without them, and localcloud delivers those.
        dispatcher = _active()
        if dispatcher is None:
            original(self, original_event, transform_input)
            return
        others = copy.copy(self)
        others.targets = [t for t in self.targets if ":lambda:" not in t.get("Arn", "")]
        original(others, original_event, transform_input)
        if getattr(self, "state", "ENABLED") != "ENABLED":
            return
        if not self.event_pattern.get_pattern() or not self.event_pattern.matches_event(original_event):
            # A rule without a pattern is a schedule rule: events never match it.
            return
        for target in self.targets:
            if ":lambda:" in target.get("Arn", ""):
                dispatcher.invoke_async(target["Arn"], rule_target_event(target, original_event), "events")

    Rule.send_to_targets = send_to_targets  # type: ignore[method-assign]


def _patch_mappings() -> None:

    original_create = LambdaBackend.create_event_source_mapping
    original_update = LambdaBackend.update_event_source_mapping

    def create_event_source_mapping(self: Any, spec: dict[str, Any]) -> Any:
        mapping = original_create(self, spec)
        if _active() is not None:
            detach_builtin_pollers()
        return mapping

    def update_event_source_mapping(self: Any, mapping_uuid: str, spec: dict[str, Any]) -> Any:
        mapping = original_update(self, mapping_uuid, spec)
        if _active() is not None:
            detach_builtin_pollers()
        return mapping

    LambdaBackend.create_event_source_mapping = create_event_source_mapping  # type: ignore[method-assign]
    LambdaBackend.update_event_source_mapping = update_event_source_mapping  # type: ignore[method-assign,assignment]


def _patch_layers() -> None:
    # CloudFormation's Ref of an AWS::Lambda::LayerVersion is the layer version's ARN; moto's model
    # has no physical id, so functions' Layers received "" and lost their layers.
    if not hasattr(LayerVersion, "physical_resource_id"):
        LayerVersion.physical_resource_id = property(lambda self: self.arn)  # type: ignore[attr-defined]
    # moto's stack creation drops a function's Layers (its stack update keeps them): attach them.
    original_create = LambdaFunction.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]

    def create_from_cloudformation_json(
        cls: Any, resource_name: str, cloudformation_json: dict[str, Any], *args: Any, **kwargs: Any
    ) -> Any:
        function = original_create(cls, resource_name, cloudformation_json, *args, **kwargs)
        layers = cloudformation_json.get("Properties", {}).get("Layers")
        if layers:
            function.layers = function._get_layers_data(layers)
        return function

    LambdaFunction.create_from_cloudformation_json = classmethod(create_from_cloudformation_json)  # type: ignore[assignment,method-assign]
