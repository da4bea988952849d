"""``LocalIot``: the broker, the data plane and the rules engine, started and stopped together."""

from __future__ import annotations

import ast
import json
import logging
import threading
import time
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from localcloud.aws import DEFAULT_REGION, make_client
from localcloud.invocation import Invoker
from localcloud.iot.actions import ActionServices
from localcloud.iot.broker import BrokerStartError, Clock, MqttBroker, RetainedMessage
from localcloud.iot.dataplane import DataPlaneServer
from localcloud.iot.messages import IotMessage
from localcloud.iot.policy import ClientPolicy, IotAccess, device_policy
from localcloud.iot.rules import FailedMessage, RuleConfigError, RuleEngine, RuleInfo, RuleStats, TopicRule

if TYPE_CHECKING:
    from localcloud.deploy import DeployResult

LOG = logging.getLogger(__name__)

TOPIC_RULE_TYPE = "AWS::IoT::TopicRule"
ROLE_ATTACHMENT_TYPE = "AWS::Cognito::IdentityPoolRoleAttachment"
# What SkippedResource.handled_by says for the rules LocalIot runs.
HANDLED_BY = "localcloud.iot"
# botocore's service-specific endpoint variable for iot-data (service id "IoT Data Plane"); it wins
# over AWS_ENDPOINT_URL, so code inside functions reaches the local data plane with no change.
DATA_PLANE_ENDPOINT_ENV = "AWS_ENDPOINT_URL_IOT_DATA_PLANE"


class LocalIot:
    """Local AWS IoT Core: an MQTT broker (TCP + WebSocket), the data-plane HTTP endpoint and topic rules.

    ``endpoint_url`` is the local AWS endpoint rule actions write to (Kinesis, SQS, Lambda, ...).
    Ports 0 pick free ports. ``invoker`` (e.g. localcloud's Lambda runtime) runs Lambda actions
    in-process; without it they go through the Lambda ``Invoke`` API (``InvocationType=Event``).
    ``clock`` gives the time for ``timestamp()`` (seconds, like :func:`time.time`).
    """

    def __init__(
        self,
        endpoint_url: str,
        region: str = DEFAULT_REGION,
        *,
        host: str = "127.0.0.1",
        mqtt_port: int = 0,
        ws_port: int = 0,
        data_port: int = 0,
        invoker: Invoker | None = None,
        start_timeout: float = 10.0,
        clock: Clock = time.time,
        access: IotAccess | None = None,
    ) -> None:
        """``access``: who may connect and do what on the broker (None: anyone, anything)."""
        self.endpoint_url = endpoint_url
        self.region = region
        self.host = host
        self.engine = RuleEngine()
        self.broker = MqttBroker(
            host,
            mqtt_port,
            ws_port,
            on_message=self._route,
            start_timeout=start_timeout,
            clock=clock,
            access=access,
        )
        self.data_plane = DataPlaneServer(self, host, data_port)
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()
        self.services = ActionServices(client=self.client, invoker=invoker, publish=self._republish)
        self._started = False

    # -------------------------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Start the broker and the data plane; raise :class:`BrokerStartError` if a port is taken."""
        if self._started:
            raise BrokerStartError("LocalIot is already running")
        self.broker.start()
        try:
            self.data_plane.start()
        except OSError as exc:
            self.broker.stop()
            raise BrokerStartError(f"the IoT data plane could not listen on {self.host}: {exc}") from exc
        self._started = True

    def stop(self) -> None:
        """Stop taking messages, let the rules finish what is queued, release the ports."""
        if not self._started:
            return
        self._started = False
        self.data_plane.stop()
        self.broker.stop()
        self.engine.close()

    def __enter__(self) -> LocalIot:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def mqtt_url(self) -> str:
        """``mqtt://host:port``: MQTT over TCP."""
        return f"mqtt://{self.host}:{self.broker.mqtt_port}"

    @property
    def ws_url(self) -> str:
        """``ws://host:port/mqtt``: MQTT over WebSocket (subprotocol ``mqtt``), as browsers use it."""
        return f"ws://{self.host}:{self.broker.ws_port}/mqtt"

    @property
    def data_url(self) -> str:
        """``http://host:port``: ``endpoint_url`` for boto3's ``iot-data`` client."""
        return self.data_plane.url

    def client_environment(self) -> dict[str, str]:
        """Environment variables that send boto3's ``iot-data`` clients to this data plane.

        Give them to function workers (next to ``AWS_ENDPOINT_URL``): otherwise an iot-data
        ``publish`` inside a handler goes to moto, which accepts it and delivers it nowhere.
        """
        return {DATA_PLANE_ENDPOINT_ENV: self.data_url}

    def client(self, service_name: str) -> Any:
        """A boto3 client for the local AWS endpoint (shared by the rule actions)."""
        with self._clients_lock:
            if service_name not in self._clients:
                self._clients[service_name] = make_client(service_name, self.endpoint_url, self.region)
            return self._clients[service_name]

    # -------------------------------------------------------------------------------- messages

    def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> IotMessage:
        """Publish as the data plane does: MQTT subscribers receive it and the rules see it."""
        return self.broker.publish(topic, payload, qos=qos, retain=retain)

    def retained_messages(self) -> list[RetainedMessage]:
        """Every retained message."""
        return self.broker.retained_messages()

    def _route(self, message: IotMessage) -> None:
        self.engine.submit(message)

    def _republish(self, topic: str, payload: bytes, qos: int) -> None:
        self.broker.publish(topic, payload, qos=qos)

    # -------------------------------------------------------------------------------- rules

    def register(self, result: DeployResult) -> list[RuleInfo]:
        """(Re)load the ``AWS::IoT::TopicRule`` resources of a deployed stack, replacing its old rules.

        A rule's name is its ``RuleName`` or else the stand-in id its ``Ref`` resolved to. Rules that
        cannot run are reported with ``RuleInfo.error`` (and logged); the others run. Each loaded
        rule's ``SkippedResource.handled_by`` becomes ``"localcloud.iot"``.
        """
        rules: list[TopicRule] = []
        infos: list[RuleInfo] = []
        source = f"stack:{result.stack_name}"
        loaded = []
        for item in result.skipped:
            if item.resource_type != TOPIC_RULE_TYPE:
                continue
            properties = item.resolved_properties
            if properties is None:
                properties = item.definition.get("Properties", {}) or {}
            name = properties.get("RuleName")
            if not isinstance(name, str) or not name:
                name = item.physical_id
            where = f"{result.stack_name}/{item.logical_id}"
            try:
                payload = properties.get("TopicRulePayload")
                if not isinstance(payload, Mapping):
                    raise RuleConfigError(f"rule {name}: TopicRulePayload is missing")
                rule = TopicRule.from_payload(name, payload, self.services, source=where)
            except RuleConfigError as exc:
                LOG.error("%s: topic rule not loaded: %s", where, exc)
                infos.append(RuleInfo.failed(name, where, str(exc)))
                continue
            rules.append(rule)
            loaded.append(item)
            infos.append(RuleInfo.of(rule))
        self.engine.replace(source, rules)
        for item in loaded:
            item.handled_by = HANDLED_BY
        return infos

    def unregister(self, stack_name: str) -> None:
        """Drop the rules of a stack (e.g. when it is deleted)."""
        self.engine.remove(f"stack:{stack_name}")

    def add_rule(self, name: str, payload: Mapping[str, Any]) -> RuleInfo:
        """Create or replace one rule from a ``TopicRulePayload`` (CloudFormation or IoT API spelling)."""
        rule = TopicRule.from_payload(name, payload, self.services, source=f"rule:{name}")
        self.engine.replace(f"rule:{name}", [rule])
        return RuleInfo.of(rule)

    def remove_rule(self, name: str) -> None:
        """Delete a rule created with :meth:`add_rule`."""
        self.engine.remove(f"rule:{name}")

    def apply_policies(self, result: DeployResult, *, open: bool = False) -> IotAccess:
        """Authorize MQTT clients with the stack's policies (see :mod:`localcloud.iot.policy`).

        Viewers (user name ``cognito:<identity id>``) get the IoT statements of the identity pool's
        unauthenticated role, read from IAM as deployed; devices (user name ``device``) may publish
        to the topics of the stack's enabled topic rules; anyone else is refused, unless ``open``.
        """
        viewer: ClientPolicy | None = None
        account = "123456789012"
        for item in result.skipped:
            if item.resource_type != ROLE_ATTACHMENT_TYPE:
                continue
            role_arn = ((item.resolved_properties or {}).get("Roles") or {}).get("unauthenticated")
            if isinstance(role_arn, str) and role_arn.startswith("arn:"):
                account = role_arn.split(":")[4] or account
                viewer = ClientPolicy.from_statements(self._role_statements(role_arn.rsplit("/", 1)[-1]))
        source = f"{result.stack_name}/"
        ingest = [r.topic_filter for r in self.rules() if r.source.startswith(source) and not r.disabled]
        access = IotAccess(
            region=self.region,
            account=account,
            viewer=viewer,
            device=device_policy(self.region, account, ingest) if ingest else None,
            open=open,
        )
        self.broker.access = access
        return access

    def _role_statements(self, role_name: str) -> list[dict[str, Any]]:
        iam = self.client("iam")
        statements: list[dict[str, Any]] = []
        for policy_name in iam.list_role_policies(RoleName=role_name)["PolicyNames"]:
            document = _policy_document(
                iam.get_role_policy(RoleName=role_name, PolicyName=policy_name)["PolicyDocument"]
            )
            found = document.get("Statement", [])
            statements.extend(found if isinstance(found, list) else [found])
        return statements

    def rules(self) -> list[RuleInfo]:
        """Every loaded rule."""
        return [RuleInfo.of(rule) for rule in self.engine.rules()]

    def stats(self) -> dict[str, RuleStats]:
        """Each rule's counters, by rule name."""
        return self.engine.stats()

    @property
    def failures(self) -> list[FailedMessage]:
        """Messages whose actions failed with no working error action (the latest 1000)."""
        return list(self.engine.failures)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until every rule has finished the messages it was given; False on timeout."""
        return self.engine.wait_idle(timeout)


def _policy_document(document: Any) -> dict[str, Any]:
    """A role policy as IAM returned it: a dict, JSON text, or (moto, for a policy its CloudFormation
    created) the Python repr of a dict."""
    if isinstance(document, dict):
        return document
    text = unquote(str(document))
    try:
        parsed = json.loads(text)
    except ValueError:
        try:
            parsed = ast.literal_eval(text)  # literals only: never runs code
        except (ValueError, SyntaxError):
            return {}
    return parsed if isinstance(parsed, dict) else {}
