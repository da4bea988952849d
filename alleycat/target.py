"""Where a command points: the local stack (``.alleycat/local.json``) or a deployed AWS stack.

Both resolve to the same :class:`StackTarget`, so every command works against either.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import boto3
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest

LOCAL_INFO = Path(".alleycat") / "local.json"
STACK_KEY = "alleycat"


class TargetError(RuntimeError):
    """The target stack cannot be found or is incomplete; the message says what to do."""


@dataclass
class StackTarget:
    """Endpoints and resource names of one running Alleycat stack."""

    region: str
    api_url: str
    stream_name: str
    table_name: str
    topic_prefix: str
    mqtt_url: str | None
    endpoint_url: str | None = None  # None: real AWS
    profile: str | None = None
    outputs: dict[str, str] = field(default_factory=dict)

    @property
    def is_local(self) -> bool:
        """True for localcloud, False for AWS."""
        return self.endpoint_url is not None

    def session(self) -> boto3.session.Session:
        """A boto3 session for this target (fake credentials locally)."""
        if self.is_local:
            return boto3.session.Session(
                aws_access_key_id="alleycat", aws_secret_access_key="alleycat", region_name=self.region
            )
        return boto3.session.Session(profile_name=self.profile, region_name=self.region)

    def client(self, service: str) -> Any:
        """A boto3 client for ``service`` on this target."""
        return self.session().client(service, endpoint_url=self.endpoint_url)  # type: ignore[call-overload]

    def standings_topic(self, race_id: int) -> str:
        """The MQTT topic carrying a race's live standings."""
        return f"{self.topic_prefix}/races/{race_id}/standings"


def _outputs_target(outputs: dict[str, str], *, region: str, source: str) -> dict[str, Any]:
    missing = [key for key in ("StreamName", "TableName", "ApiUrl") if not outputs.get(key)]
    if missing:
        raise TargetError(f"{source} lacks the outputs {', '.join(missing)}; is it an Alleycat stack?")
    return {
        "region": region,
        "api_url": outputs["ApiUrl"].rstrip("/"),
        "stream_name": outputs["StreamName"],
        "table_name": outputs["TableName"],
        "topic_prefix": outputs.get("IotTopicPrefix", "alleycat"),
        "outputs": outputs,
    }


def local_target(path: Path = LOCAL_INFO) -> StackTarget:
    """The stack described by ``alleycat up``'s ``local.json``."""
    try:
        info = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise TargetError(f"{path} not found: start the local stack with `alleycat up`") from exc
    except (OSError, ValueError) as exc:
        raise TargetError(f"{path} is unreadable ({exc}); delete it and run `alleycat up` again") from exc
    outputs = info.get("stacks", {}).get(STACK_KEY, {}).get("outputs", {})
    fields = _outputs_target(outputs, region=info.get("region", "us-east-1"), source=str(path))
    fields["api_url"] = info.get("api_url", fields["api_url"]).rstrip("/")
    return StackTarget(endpoint_url=info["endpoint_url"], mqtt_url=info.get("mqtt_url"), **fields)


def aws_target(stack_name: str, region: str | None = None, profile: str | None = None) -> StackTarget:
    """A deployed stack, found by name through CloudFormation's outputs."""
    session = boto3.session.Session(profile_name=profile, region_name=region)
    if session.region_name is None:
        raise TargetError("no region: pass --region or configure one for the profile")
    cloudformation = session.client("cloudformation")
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except Exception as exc:  # botocore raises ClientError or a credentials error: both say it all
        raise TargetError(f"cannot read stack {stack_name!r} in {session.region_name}: {exc}") from exc
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    fields = _outputs_target(outputs, region=session.region_name, source=f"stack {stack_name}")
    address = session.client("iot").describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"]
    return StackTarget(mqtt_url=f"wss://{address}/mqtt", profile=profile, **fields)


def signed_mqtt_url(target: StackTarget) -> str:
    """The MQTT-over-WebSocket URL to connect with: SigV4 query-signed for AWS, as is locally."""
    if target.mqtt_url is None:
        raise TargetError("this stack has no MQTT endpoint")
    if target.is_local:
        return target.mqtt_url
    credentials = target.session().get_credentials()
    if credentials is None:
        raise TargetError("no AWS credentials to sign the MQTT connection with")
    frozen = credentials.get_frozen_credentials()
    https_url = "https://" + target.mqtt_url.removeprefix("wss://")
    request = AWSRequest(method="GET", url=https_url)
    # IoT verifies the signature without the session token, which is appended afterwards.
    unsigned = type(frozen)(frozen.access_key, frozen.secret_key, None)
    SigV4QueryAuth(unsigned, "iotdevicegateway", target.region, expires=3600).add_auth(request)
    url = "wss://" + str(request.url).removeprefix("https://")
    if frozen.token:
        url += "&X-Amz-Security-Token=" + quote(frozen.token, safe="")
    return url
