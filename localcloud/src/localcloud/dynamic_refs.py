"""CloudFormation dynamic references, resolved before the template reaches moto.

``{{resolve:secretsmanager:<secret-id>[:SecretString[:<json-key>[:<version-stage>[:<version-id>]]]]}}``
and ``{{resolve:ssm:<name>[:<version>]}}`` / ``{{resolve:ssm-secure:...}}`` are replaced by the
values in the local endpoint's Secrets Manager and SSM. moto would pass them through as text.
A reference whose id still contains ``${...}`` (resolved only by Fn::Sub later) is left as it is.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any

LOG = logging.getLogger(__name__)

_REFERENCE = re.compile(r"\{\{resolve:(secretsmanager|ssm|ssm-secure):([^}]+)\}\}")
_ARN_PARTS = 7  # arn:aws:secretsmanager:<region>:<account>:secret:<name>


class DynamicReferenceError(ValueError):
    """A dynamic reference names something that does not exist locally."""


def _secret_value(client: Any, body: str) -> str:
    parts = body.split(":")
    if body.startswith("arn:"):
        secret_id, rest = ":".join(parts[:_ARN_PARTS]), parts[_ARN_PARTS:]
    else:
        secret_id, rest = parts[0], parts[1:]
    _, json_key, stage, version_id = [*rest, "", "", "", ""][:4]
    request: dict[str, str] = {"SecretId": secret_id}
    if version_id:
        request["VersionId"] = version_id
    elif stage:
        request["VersionStage"] = stage
    value = str(client.get_secret_value(**request)["SecretString"])
    if json_key:
        return str(json.loads(value)[json_key])
    return value


def _parameter_value(client: Any, body: str) -> str:
    name, _, version = body.partition(":")
    reference = f"{name}:{version}" if version else name
    return str(client.get_parameter(Name=reference, WithDecryption=True)["Parameter"]["Value"])


def resolve_text(text: str, client: Callable[[str], Any]) -> str:
    """Replace the dynamic references in one string."""

    def substitute(match: re.Match[str]) -> str:
        service, body = match.group(1), match.group(2)
        if "${" in body:
            return match.group(0)
        try:
            if service == "secretsmanager":
                return _secret_value(client("secretsmanager"), body)
            return _parameter_value(client("ssm"), body)
        except Exception as exc:
            raise DynamicReferenceError(f"cannot resolve {match.group(0)}: {exc}") from exc

    return _REFERENCE.sub(substitute, text)


def resolve_dynamic_references(node: Any, client: Callable[[str], Any]) -> Any:
    """Return ``node`` (a template or any part of it) with dynamic references resolved."""
    if isinstance(node, str):
        return resolve_text(node, client) if "{{resolve:" in node else node
    if isinstance(node, list):
        return [resolve_dynamic_references(item, client) for item in node]
    if isinstance(node, dict):
        return {key: resolve_dynamic_references(value, client) for key, value in node.items()}
    return node
