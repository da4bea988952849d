"""IoT authorization for the local broker: what each kind of client may do, from a stack's policies.

AWS IoT authorizes every MQTT action against the caller's policies: ``iot:Connect`` on
``client/<client id>``, ``iot:Publish`` / ``iot:Receive`` on ``topic/<topic>`` and
``iot:Subscribe`` on ``topicfilter/<filter>`` (ARNs ``arn:aws:iot:<region>:<account>:...``, IAM
wildcards ``*`` and ``?``, policy variables such as ``${cognito-identity.amazonaws.com:sub}`` and
``${iot:ClientId}``). Locally there are no certificates or signed URLs, so a client names the kind
of identity it has in its MQTT user name, and the broker applies that kind's policy:

- ``cognito:<identity id>``: a browser viewer, with the IoT statements of the identity pool's
  unauthenticated role (``${cognito-identity.amazonaws.com:sub}`` is the identity id);
- ``device``: a device, allowed to connect and to publish to the topics the stack's topic rules
  read (its ingest topics), and nothing else.

A client that names no known kind is refused, unless the broker is open (``--iot-open``). What the
user name claims is not proven (AWS proves it with SigV4 or X.509): the point locally is that every
client gets exactly the rights its kind has on AWS, so nothing can publish standings as a viewer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

COGNITO_PREFIX = "cognito:"
DEVICE = "device"
_VARIABLE = re.compile(r"\$\{([^}]+)\}")


@lru_cache(maxsize=1024)
def _pattern(resource: str) -> re.Pattern[str]:
    """IAM's resource matching: ``*`` any run of characters (``/`` included), ``?`` one character."""
    return re.compile(
        "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in resource) + r"\Z"
    )


@dataclass(frozen=True)
class ClientPolicy:
    """The Allow statements of one kind of client: action → resource patterns (may hold variables)."""

    allow: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def from_statements(cls, statements: Iterable[Mapping[str, Any]]) -> ClientPolicy:
        """The ``iot:*`` Allow statements of an IAM or IoT policy document (Deny is not modelled)."""
        allow: dict[str, list[str]] = {}
        for statement in statements:
            if statement.get("Effect") != "Allow":
                continue
            actions = statement.get("Action", [])
            resources = statement.get("Resource", [])
            for action in actions if isinstance(actions, list) else [actions]:
                if str(action).startswith("iot:"):
                    allow.setdefault(str(action), []).extend(
                        str(r) for r in (resources if isinstance(resources, list) else [resources])
                    )
        return cls({action: tuple(patterns) for action, patterns in allow.items()})

    def allows(self, action: str, resource: str, variables: Mapping[str, str]) -> bool:
        """Whether ``action`` on ``resource`` is allowed, with policy ``variables`` substituted."""
        for pattern in self.allow.get(action, ()):
            # An unknown variable matches nothing, as on AWS (it is not a wildcard).
            concrete = _VARIABLE.sub(lambda m: variables.get(m.group(1), "\x00"), pattern)
            if "\x00" not in concrete and _pattern(concrete).match(resource):
                return True
        return False


@dataclass
class IotAccess:
    """The broker's authorizer: client kinds and their policies for one region and account."""

    region: str = "us-east-1"
    account: str = "123456789012"
    viewer: ClientPolicy | None = None
    device: ClientPolicy | None = None
    open: bool = False

    def arn(self, kind: str, name: str) -> str:
        """``arn:aws:iot:<region>:<account>:<kind>/<name>``."""
        return f"arn:aws:iot:{self.region}:{self.account}:{kind}/{name}"

    def identify(self, username: str | None, client_id: str) -> tuple[ClientPolicy, dict[str, str]] | None:
        """The policy and policy variables of a client, or None (no identity this broker knows)."""
        variables = {"iot:ClientId": client_id}
        if username and username.startswith(COGNITO_PREFIX) and self.viewer is not None:
            identity = username.removeprefix(COGNITO_PREFIX)
            if identity:
                return self.viewer, {**variables, "cognito-identity.amazonaws.com:sub": identity}
        if username == DEVICE and self.device is not None:
            return self.device, variables
        return None

    def may_connect(self, username: str | None, client_id: str) -> bool:
        """``iot:Connect`` for the client's identity (anyone when open)."""
        if self.open:
            return True
        found = self.identify(username, client_id)
        return found is not None and found[0].allows("iot:Connect", self.arn("client", client_id), found[1])

    def may(self, username: str | None, client_id: str, action: str, topic: str) -> bool:
        """``iot:Publish`` / ``iot:Receive`` (on a topic) or ``iot:Subscribe`` (on a topic filter)."""
        if self.open:
            return True
        found = self.identify(username, client_id)
        if found is None:
            return False
        kind = "topicfilter" if action == "iot:Subscribe" else "topic"
        return found[0].allows(action, self.arn(kind, topic), found[1])


def device_policy(region: str, account: str, ingest_filters: Iterable[str]) -> ClientPolicy:
    """Devices: connect with any client id, publish to the topic rules' topics, nothing else."""
    topics = tuple(
        f"arn:aws:iot:{region}:{account}:topic/{f.replace('#', '*').replace('+', '*')}"
        for f in ingest_filters
    )
    return ClientPolicy({"iot:Connect": (f"arn:aws:iot:{region}:{account}:client/*",), "iot:Publish": topics})


__all__ = ["COGNITO_PREFIX", "DEVICE", "ClientPolicy", "IotAccess", "device_policy"]
