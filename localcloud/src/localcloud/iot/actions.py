"""Topic rule actions: where a rule sends the SELECT output.

Each action is a small class built from its CloudFormation properties (PascalCase, as in
``AWS::IoT::TopicRule``) or the IoT API's camelCase; AWS calls go to the local endpoint through
boto3. An action signals failure by raising; the rules engine then runs the rule's error action.
"""

from __future__ import annotations

import base64
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar

from boto3.dynamodb.types import TypeSerializer

from localcloud.invocation import FunctionNotFoundError, Invoker, TooManyRequestsError
from localcloud.iot.messages import UNDEFINED
from localcloud.iot.sql import EvalContext, SelectResult
from localcloud.iot.templates import SubstitutionTemplate

LOG = logging.getLogger(__name__)

ClientFactory = Callable[[str], Any]
# Kinesis PutRecords limits.
_KINESIS_BATCH_RECORDS = 500
_KINESIS_BATCH_BYTES = 5 * 1024 * 1024
Publisher = Callable[[str, bytes, int], None]


class ActionError(Exception):
    """An action could not deliver the message (the text becomes the error message's errorMessage)."""


class ActionConfigError(ValueError):
    """An action's properties are missing or invalid, or its type is not supported locally."""


@dataclass
class ActionServices:
    """What actions reach out to: boto3 clients for the local endpoint, Lambda, the broker."""

    client: ClientFactory
    invoker: Invoker | None = None
    publish: Publisher | None = None


def prop(properties: Mapping[str, Any], name: str, default: Any = None) -> Any:
    """A property by its CloudFormation (``StreamName``) or IoT API (``streamName``) name."""
    if name in properties:
        return properties[name]
    return properties.get(name[:1].lower() + name[1:], default)


def _required(properties: Mapping[str, Any], name: str, action: str) -> Any:
    value = prop(properties, name)
    if value is None or value == "":
        raise ActionConfigError(f"{action} action needs {name}")
    if isinstance(value, dict):
        raise ActionConfigError(f"{action} action: {name} is unresolved ({json.dumps(value)})")
    return value


class RuleAction(ABC):
    """One action of a topic rule."""

    # The name AWS puts in an error action message's ``failedAction``.
    kind: ClassVar[str]

    def __init__(self, properties: Mapping[str, Any], services: ActionServices) -> None:
        self._services = services

    @property
    @abstractmethod
    def resource(self) -> str:
        """The target (stream, queue, function, ...), for ``failedResource`` and logs."""

    @abstractmethod
    def run(self, result: SelectResult, ctx: EvalContext) -> None:
        """Deliver ``result`` for the message in ``ctx``; raise on failure."""

    def run_many(self, items: Sequence[tuple[SelectResult, EvalContext]]) -> list[Exception | None]:
        """Deliver several messages' results in order; one outcome per item, None for success.

        Actions whose service has a batch API override this; the rules engine hands over what
        queued up while the previous call was in flight.
        """
        outcomes: list[Exception | None] = []
        for result, ctx in items:
            try:
                self.run(result, ctx)
            except Exception as exc:
                outcomes.append(exc)
            else:
                outcomes.append(None)
        return outcomes

    def describe(self) -> str:
        """A short label such as ``KinesisAction(my-stream)``."""
        return f"{self.kind}({self.resource})"


class KinesisAction(RuleAction):
    """PutRecord into a Kinesis data stream; the partition key may be a substitution template."""

    kind = "KinesisAction"

    def __init__(self, properties: Mapping[str, Any], services: ActionServices) -> None:
        self.stream_name = str(_required(properties, "StreamName", "Kinesis"))
        key = prop(properties, "PartitionKey")
        # Without a partition key AWS picks a random one per record.
        self.partition_key = SubstitutionTemplate.parse(str(key) if key else "${newuuid()}")
        super().__init__(properties, services)

    @property
    def resource(self) -> str:
        return self.stream_name

    def _key(self, ctx: EvalContext) -> str:
        key = self.partition_key.render(ctx)
        if not key:
            raise ActionError(
                f"partition key {self.partition_key.source!r} evaluated to an empty string "
                f"for the message on {ctx.message.topic}"
            )
        return key[:256]

    def _failed(self, exc: Exception | str) -> ActionError:
        return ActionError(f"Failed to put a record into Kinesis stream {self.stream_name}: {exc}")

    def run(self, result: SelectResult, ctx: EvalContext) -> None:
        key = self._key(ctx)
        try:
            self._services.client("kinesis").put_record(
                StreamName=self.stream_name, Data=result.payload, PartitionKey=key
            )
        except Exception as exc:
            raise self._failed(exc) from exc

    def run_many(self, items: Sequence[tuple[SelectResult, EvalContext]]) -> list[Exception | None]:
        """One PutRecords call per 500 records / 5 MB: still one record per message, in order."""
        if len(items) == 1:
            return super().run_many(items)
        outcomes: list[Exception | None] = [None] * len(items)
        batch: list[tuple[int, dict[str, Any]]] = []
        size = 0
        for position, (result, ctx) in enumerate(items):
            try:
                key = self._key(ctx)
            except ActionError as exc:
                outcomes[position] = exc
                continue
            record_size = len(result.payload) + len(key.encode())
            if batch and (len(batch) == _KINESIS_BATCH_RECORDS or size + record_size > _KINESIS_BATCH_BYTES):
                self._put_records(batch, outcomes)
                batch, size = [], 0
            batch.append((position, {"Data": result.payload, "PartitionKey": key}))
            size += record_size
        if batch:
            self._put_records(batch, outcomes)
        return outcomes

    def _put_records(self, batch: list[tuple[int, dict[str, Any]]], outcomes: list[Exception | None]) -> None:
        try:
            answer = self._services.client("kinesis").put_records(
                StreamName=self.stream_name, Records=[record for _, record in batch]
            )
        except Exception as exc:
            for position, _ in batch:
                outcomes[position] = self._failed(exc)
            return
        for (position, _), entry in zip(batch, answer["Records"], strict=True):
            if entry.get("ErrorCode"):
                outcomes[position] = self._failed(f"{entry['ErrorCode']}: {entry.get('ErrorMessage', '')}")


class SqsAction(RuleAction):
    """SendMessage to an SQS queue (base64-encoding the payload when ``UseBase64`` is true)."""

    kind = "SqsAction"

    def __init__(self, properties: Mapping[str, Any], services: ActionServices) -> None:
        self.queue_url = str(_required(properties, "QueueUrl", "Sqs"))
        self.use_base64 = str(prop(properties, "UseBase64", False)).lower() == "true"
        super().__init__(properties, services)

    @property
    def resource(self) -> str:
        return self.queue_url

    def run(self, result: SelectResult, ctx: EvalContext) -> None:
        if self.use_base64:
            body = base64.b64encode(result.payload).decode()
        else:
            body = result.payload.decode("utf-8", errors="replace")
        try:
            self._services.client("sqs").send_message(QueueUrl=self.queue_url, MessageBody=body)
        except Exception as exc:
            raise ActionError(f"Failed to send a message to SQS queue {self.queue_url}: {exc}") from exc


class LambdaAction(RuleAction):
    """Invokes a function with the SELECT output (a JSON object) as its event.

    With an :class:`~localcloud.invocation.Invoker` the call is made in-process; a handler error is
    logged and counted, not an action failure (AWS invokes asynchronously, so it never sees one).
    Without one, the Lambda ``Invoke`` API is called with ``InvocationType=Event``.
    """

    kind = "LambdaAction"

    def __init__(self, properties: Mapping[str, Any], services: ActionServices) -> None:
        self.function_arn = str(_required(properties, "FunctionArn", "Lambda"))
        super().__init__(properties, services)
        self.function_errors = 0

    @property
    def resource(self) -> str:
        return self.function_arn

    def run(self, result: SelectResult, ctx: EvalContext) -> None:
        if result.value is UNDEFINED:
            raise ActionError("the Lambda action needs a JSON payload (use encode(*, 'base64') for binary)")
        invoker = self._services.invoker
        if invoker is None:
            try:
                self._services.client("lambda").invoke(
                    FunctionName=self.function_arn, InvocationType="Event", Payload=result.payload
                )
            except Exception as exc:
                raise ActionError(f"Failed to invoke Lambda function {self.function_arn}: {exc}") from exc
            return
        try:
            outcome = invoker.invoke(self.function_arn, result.value)
        except (FunctionNotFoundError, TooManyRequestsError) as exc:
            raise ActionError(f"Failed to invoke Lambda function {self.function_arn}: {exc!r}") from exc
        if not outcome.ok:
            self.function_errors += 1
            LOG.warning(
                "function %s failed on the message from %s: %s",
                self.function_arn,
                ctx.message.topic,
                outcome.payload,
            )


class RepublishAction(RuleAction):
    """Publishes the SELECT output to another topic (a substitution template) on the broker."""

    kind = "RepublishAction"

    def __init__(self, properties: Mapping[str, Any], services: ActionServices) -> None:
        self.topic = SubstitutionTemplate.parse(str(_required(properties, "Topic", "Republish")))
        self.qos = int(prop(properties, "Qos", 0))
        super().__init__(properties, services)

    @property
    def resource(self) -> str:
        return self.topic.source

    def run(self, result: SelectResult, ctx: EvalContext) -> None:
        publish = self._services.publish
        if publish is None:
            raise ActionError("no broker to republish to")
        topic = self.topic.render(ctx)
        try:
            publish(topic, result.payload, self.qos)
        except Exception as exc:
            raise ActionError(f"Failed to republish to {topic!r}: {exc}") from exc


class SnsAction(RuleAction):
    """Publishes the SELECT output to an SNS topic."""

    kind = "SnsAction"

    def __init__(self, properties: Mapping[str, Any], services: ActionServices) -> None:
        self.target_arn = str(_required(properties, "TargetArn", "Sns"))
        self.message_format = str(prop(properties, "MessageFormat", "RAW")).upper()
        super().__init__(properties, services)

    @property
    def resource(self) -> str:
        return self.target_arn

    def run(self, result: SelectResult, ctx: EvalContext) -> None:
        request: dict[str, Any] = {
            "TargetArn": self.target_arn,
            "Message": result.payload.decode("utf-8", errors="replace"),
        }
        if self.message_format == "JSON":
            request["MessageStructure"] = "json"
        try:
            self._services.client("sns").publish(**request)
        except Exception as exc:
            raise ActionError(f"Failed to publish to SNS topic {self.target_arn}: {exc}") from exc


class DynamoDBv2Action(RuleAction):
    """Writes the SELECT output (a JSON object) as one item with PutItem."""

    kind = "DynamoDBv2Action"

    def __init__(self, properties: Mapping[str, Any], services: ActionServices) -> None:
        put_item = prop(properties, "PutItem") or {}
        self.table_name = str(_required(put_item, "TableName", "DynamoDBv2"))
        super().__init__(properties, services)
        self._serializer = TypeSerializer()

    @property
    def resource(self) -> str:
        return self.table_name

    def run(self, result: SelectResult, ctx: EvalContext) -> None:
        try:
            # DynamoDB numbers must be Decimal, never float.
            document = json.loads(result.payload, parse_float=Decimal)
        except ValueError as exc:
            raise ActionError("the DynamoDBv2 action needs a JSON object payload") from exc
        if not isinstance(document, dict):
            raise ActionError("the DynamoDBv2 action needs a JSON object payload")
        item = {key: self._serializer.serialize(value) for key, value in document.items()}
        try:
            self._services.client("dynamodb").put_item(TableName=self.table_name, Item=item)
        except Exception as exc:
            raise ActionError(f"Failed to put an item into DynamoDB table {self.table_name}: {exc}") from exc


class FirehoseAction(RuleAction):
    """PutRecord into a Firehose delivery stream, with the optional separator appended."""

    kind = "FirehoseAction"

    def __init__(self, properties: Mapping[str, Any], services: ActionServices) -> None:
        self.stream_name = str(_required(properties, "DeliveryStreamName", "Firehose"))
        separator = prop(properties, "Separator")
        self.separator = str(separator).encode().decode("unicode_escape").encode() if separator else b""
        super().__init__(properties, services)

    @property
    def resource(self) -> str:
        return self.stream_name

    def run(self, result: SelectResult, ctx: EvalContext) -> None:
        try:
            self._services.client("firehose").put_record(
                DeliveryStreamName=self.stream_name, Record={"Data": result.payload + self.separator}
            )
        except Exception as exc:
            raise ActionError(f"Failed to put a record into Firehose {self.stream_name}: {exc}") from exc


# Keys are the action's name in TopicRulePayload.Actions, lower-cased (CloudFormation "Kinesis",
# API "kinesis").
ACTION_TYPES: dict[str, type[RuleAction]] = {
    "kinesis": KinesisAction,
    "sqs": SqsAction,
    "lambda": LambdaAction,
    "republish": RepublishAction,
    "sns": SnsAction,
    "dynamodbv2": DynamoDBv2Action,
    "firehose": FirehoseAction,
}


def build_action(definition: Mapping[str, Any], services: ActionServices) -> RuleAction:
    """Build the action in one ``Actions`` entry (``{"Kinesis": {...}}``) or an ``ErrorAction``."""
    if len(definition) != 1:
        raise ActionConfigError(f"an action has exactly one type, got {sorted(definition)}")
    ((name, properties),) = definition.items()
    action_type = ACTION_TYPES.get(name.lower())
    if action_type is None:
        raise ActionConfigError(f"the {name} action is not supported locally")
    if not isinstance(properties, Mapping):
        raise ActionConfigError(f"the {name} action's properties are not an object")
    return action_type(properties, services)
