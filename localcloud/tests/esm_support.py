"""Shared helpers for the event-source-mapping conformance suite (tests/localcloud/test_esm_*.py).

A real moto server on 127.0.0.1, boto3 helpers to create streams / tables / queues / functions /
mappings, an in-process :class:`RecordingInvoker` standing in for the Lambda runtime, and an engine
factory with shrunken timings.
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from localcloud.esm import EngineSettings, MappingEngine, moto_compat
from localcloud.invocation import FunctionNotFoundError, InvocationResult, TooManyRequestsError
from moto.server import ThreadedMotoServer

REGION = "us-east-1"
ACCOUNT = "123456789012"

FAST = EngineSettings(
    sync_interval_s=0.1,
    shard_refresh_interval_s=0.1,
    kinesis_poll_interval_s=0.05,
    dynamodb_poll_interval_s=0.05,
    window_idle_wait_s=0.3,
    error_backoff_s=0.05,
    error_backoff_max_s=0.2,
    retry_backoff_s=0.01,
    retry_backoff_max_s=0.02,
    throttle_backoff_s=0.01,
    throttle_backoff_max_s=0.02,
)

Handler = Callable[[dict[str, Any]], Any]


class ThrottledError(Exception):
    """Raised by a test handler to make the invoker report TooManyRequestsError."""


@dataclass
class Call:
    """One recorded invocation."""

    function: str
    event: dict[str, Any]
    started: float
    ended: float = 0.0
    result: InvocationResult | None = None

    @property
    def records(self) -> list[dict[str, Any]]:
        return list(self.event.get("Records", []))

    @property
    def seqs(self) -> list[str]:
        return [seq_of(r) for r in self.records]


def seq_of(record: dict[str, Any]) -> str:
    """Sequence number of a Kinesis or DynamoDB Lambda record."""
    if "kinesis" in record:
        return str(record["kinesis"]["sequenceNumber"])
    return str(record["dynamodb"]["SequenceNumber"])


def data_of(record: dict[str, Any]) -> Any:
    """Decoded JSON data of a Kinesis Lambda record."""
    return json.loads(base64.b64decode(record["kinesis"]["data"]))


class RecordingInvoker:
    """The Lambda runtime's stand-in: runs a Python handler per function name and records each call.

    Events are copied through JSON, as the real runtime would serialise them. A handler that raises
    is reported as a function error ("Unhandled"); one that raises :class:`ThrottledError` makes the
    invoker raise TooManyRequestsError (the function never ran).
    """

    def __init__(self) -> None:
        self.handlers: dict[str, Handler] = {}
        self.calls: list[Call] = []
        self.lock = threading.Lock()

    def register(self, name: str, handler: Handler) -> None:
        self.handlers[name] = handler

    def invoke(self, function: str, event: Any) -> InvocationResult:
        name = function.rsplit(":", maxsplit=1)[-1] if function.startswith("arn:") else function
        copied = json.loads(json.dumps(event))
        call = Call(name, copied, time.monotonic())
        handler = self.handlers.get(name)
        if handler is None:
            raise FunctionNotFoundError(name)
        try:
            payload = handler(json.loads(json.dumps(event)))
        except ThrottledError as exc:
            raise TooManyRequestsError(name) from exc
        except Exception as exc:  # the function failed
            result = InvocationResult(
                request_id=str(uuid.uuid4()),
                payload={"errorMessage": str(exc), "errorType": type(exc).__name__, "stackTrace": []},
                function_error="Unhandled",
                error_kind="exception",
            )
        else:
            result = InvocationResult(request_id=str(uuid.uuid4()), payload=json.loads(json.dumps(payload)))
        call.ended = time.monotonic()
        call.result = result
        with self.lock:
            self.calls.append(call)
        return result

    def calls_for(self, name: str) -> list[Call]:
        with self.lock:
            return [c for c in self.calls if c.function == name]

    def delivered(self, name: str, successful_only: bool = True) -> list[dict[str, Any]]:
        """Records of every (successful) invocation of ``name``, in call order."""
        out: list[dict[str, Any]] = []
        for call in self.calls_for(name):
            if successful_only and (call.result is None or not call.result.ok):
                continue
            out.extend(call.records)
        return out


@dataclass
class Aws:
    """boto3 clients against the moto server plus creation helpers."""

    endpoint_url: str
    clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        if service not in self.clients:
            self.clients[service] = boto3.client(  # type: ignore[call-overload]
                service,
                endpoint_url=self.endpoint_url,
                region_name=REGION,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
        return self.clients[service]

    def role(self) -> str:
        name = f"role-{uuid.uuid4().hex[:8]}"
        return str(
            self.client("iam").create_role(RoleName=name, AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        )

    def function(self, name: str | None = None) -> tuple[str, str, str]:
        """Create a function; returns (name, arn, role arn)."""
        name = name or f"fn-{uuid.uuid4().hex[:8]}"
        role = self.role()
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as archive:
            archive.writestr("handler.py", "def handler(event, context):\n    return None\n")
        created = self.client("lambda").create_function(
            FunctionName=name,
            Runtime="python3.11",
            Role=role,
            Handler="handler.handler",
            Code={"ZipFile": buf.getvalue()},
        )
        return name, str(created["FunctionArn"]), role

    def stream(self, shards: int = 1) -> tuple[str, str]:
        name = f"stream-{uuid.uuid4().hex[:8]}"
        kinesis = self.client("kinesis")
        kinesis.create_stream(StreamName=name, ShardCount=shards)
        arn = kinesis.describe_stream(StreamName=name)["StreamDescription"]["StreamARN"]
        return name, str(arn)

    def queue(self) -> tuple[str, str]:
        sqs = self.client("sqs")
        url = sqs.create_queue(QueueName=f"dlq-{uuid.uuid4().hex[:8]}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return str(url), str(arn)

    def table(self, view: str = "NEW_AND_OLD_IMAGES") -> tuple[str, str]:
        name = f"table-{uuid.uuid4().hex[:8]}"
        ddb = self.client("dynamodb")
        ddb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": view},
        )
        return name, str(ddb.describe_table(TableName=name)["Table"]["LatestStreamArn"])

    def mapping(self, function: str, source_arn: str, **params: Any) -> dict[str, Any]:
        params.setdefault("StartingPosition", "TRIM_HORIZON")
        created = self.client("lambda").create_event_source_mapping(
            FunctionName=function, EventSourceArn=source_arn, **params
        )
        return dict(created)

    def put(self, stream: str, data: Any, key: str = "k") -> str:
        raw = data if isinstance(data, bytes) else json.dumps(data).encode()
        return str(
            self.client("kinesis").put_record(StreamName=stream, Data=raw, PartitionKey=key)["SequenceNumber"]
        )

    def put_many(self, stream: str, items: list[tuple[str, Any]]) -> list[str]:
        """PutRecords in chunks of 500; returns sequence numbers in order."""
        seqs: list[str] = []
        for start in range(0, len(items), 500):
            chunk = items[start : start + 500]
            answer = self.client("kinesis").put_records(
                StreamName=stream,
                Records=[
                    {"Data": d if isinstance(d, bytes) else json.dumps(d).encode(), "PartitionKey": k}
                    for k, d in chunk
                ],
            )
            seqs.extend(r["SequenceNumber"] for r in answer["Records"])
        return seqs

    def drain_queue(self, url: str, expected: int = 1, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Receive messages until ``expected`` arrived (or the timeout)."""
        sqs = self.client("sqs")
        bodies: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while len(bodies) < expected and time.monotonic() < deadline:
            answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            for message in answer.get("Messages", []):
                bodies.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            if len(bodies) < expected:
                time.sleep(0.05)
        return bodies


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """A moto server for the module, with localcloud's stream adjustments applied."""
    moto_compat.apply()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws(moto_endpoint: str) -> Aws:
    """Clients against the module's moto server."""
    return Aws(moto_endpoint)


@pytest.fixture
def invoker() -> RecordingInvoker:
    """A fresh recording invoker."""
    return RecordingInvoker()


EngineFactory = Callable[..., MappingEngine]


@pytest.fixture
def make_engine(moto_endpoint: str, invoker: RecordingInvoker, tmp_path: Path) -> Iterator[EngineFactory]:
    """Build started engines with fast timings; every engine is stopped at teardown."""
    engines: list[MappingEngine] = []

    def factory(
        settings: EngineSettings = FAST,
        state_dir: Path | None = None,
        start: bool = True,
        in_memory: bool = False,
    ) -> MappingEngine:
        directory = None if in_memory else state_dir or tmp_path / "state"
        engine = MappingEngine(moto_endpoint, REGION, invoker, state_dir=directory, settings=settings)
        engines.append(engine)
        if start:
            engine.start()
        return engine

    yield factory
    for engine in engines:
        engine.stop()
    # Mappings live in the module's moto server; remove them so the next test starts clean.
    client = Aws(moto_endpoint).client("lambda")
    for mapping in client.list_event_source_mappings()["EventSourceMappings"]:
        client.delete_event_source_mapping(UUID=mapping["UUID"])


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.02) -> bool:
    """Poll ``predicate`` until true or timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
