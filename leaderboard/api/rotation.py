"""Rotates the cursor secret: Secrets Manager's four-step rotation protocol for an HMAC key.

Secrets Manager calls the function once per step, each with the secret and the new version's id
(``ClientRequestToken``):

- ``createSecret``: store a fresh random key as the ``AWSPENDING`` version (unless a retry already did);
- ``setSecret``: nothing to do: the key is used only by the API, which reads it from the secret;
- ``testSecret``: the pending key is well formed and signs and verifies a cursor;
- ``finishSecret``: move ``AWSCURRENT`` to the new version (Secrets Manager then labels the old one
  ``AWSPREVIOUS``, which the API still accepts).

Every step is idempotent, as Secrets Manager may call a step again. The key is generated here, not
with ``GetRandomPassword``, because that action has no resource to scope it to.
"""

from __future__ import annotations

import json
import secrets
from functools import cache
from typing import Any

import boto3

from leaderboard.api.cursor import MIN_SECRET_BYTES, CursorCodec
from leaderboard.api.cursor_keys import CURRENT, parse_secret_value
from leaderboard.observability import logger

PENDING = "AWSPENDING"
# 48 random bytes: well over the 32 bytes HMAC-SHA256 makes use of.
_KEY_BYTES = 48


class RotationError(RuntimeError):
    """The rotation cannot go on (the secret is not set up for it, or the new key is not usable)."""


@cache
def _client() -> Any:
    return boto3.client("secretsmanager")


def new_secret_value(version_id: str) -> str:
    """The value of a new version: its own id as the key id, and a fresh random key."""
    return json.dumps({"keyId": version_id, "secret": secrets.token_urlsafe(_KEY_BYTES)})


def create_secret(client: Any, secret_id: str, token: str) -> None:
    """Store a new key as AWSPENDING under ``token`` (kept if an earlier call stored it)."""
    client.get_secret_value(SecretId=secret_id, VersionStage=CURRENT)  # the secret must exist
    try:
        client.get_secret_value(SecretId=secret_id, VersionId=token, VersionStage=PENDING)
        return
    except client.exceptions.ResourceNotFoundException:
        pass
    client.put_secret_value(
        SecretId=secret_id,
        ClientRequestToken=token,
        SecretString=new_secret_value(token),
        VersionStages=[PENDING],
    )


def test_secret(client: Any, secret_id: str, token: str) -> None:
    """The pending key is long enough, names its version, and round-trips a cursor."""
    value = client.get_secret_value(SecretId=secret_id, VersionId=token, VersionStage=PENDING)["SecretString"]
    key_id, key = parse_secret_value(value)
    if key_id != token or len(key) < MIN_SECRET_BYTES:
        raise RotationError(f"the pending version {token} is not a usable cursor key")
    codec = CursorCodec(key, key_id)
    if codec.decode(codec.encode("rotation-test", (1, 2)), "rotation-test", 2) != (1, 2):
        raise RotationError("the pending key does not verify its own cursor")


def finish_secret(client: Any, secret_id: str, token: str) -> None:
    """Make ``token`` the current version (the old current one becomes AWSPREVIOUS)."""
    stages = client.describe_secret(SecretId=secret_id)["VersionIdsToStages"]
    current = next((version for version, labels in stages.items() if CURRENT in labels), None)
    if current != token:
        client.update_secret_version_stage(
            SecretId=secret_id, VersionStage=CURRENT, MoveToVersionId=token, RemoveFromVersionId=current
        )
    if PENDING in stages.get(token, []):
        # Done with it: AWS tolerates AWSPENDING left on the current version, but a pending label
        # lying around reads as a rotation still in progress to other tools (moto among them).
        client.update_secret_version_stage(
            SecretId=secret_id, VersionStage=PENDING, RemoveFromVersionId=token
        )


def rotate(client: Any, event: dict[str, Any]) -> None:
    """Run one step of a rotation for ``event`` (``Step``, ``SecretId``, ``ClientRequestToken``)."""
    secret_id, token, step = event["SecretId"], event["ClientRequestToken"], event["Step"]
    description = client.describe_secret(SecretId=secret_id)
    labels = description.get("VersionIdsToStages", {}).get(token)
    if labels is None:
        raise RotationError(f"{secret_id} has no version {token} to rotate to")
    if CURRENT in labels and step != "finishSecret":
        return  # already current: this rotation is over
    if PENDING not in labels and CURRENT not in labels:
        raise RotationError(f"version {token} of {secret_id} is not pending rotation")
    logger.info("rotation step", extra={"step": step, "secret_id": secret_id, "version": token})
    if step == "createSecret":
        create_secret(client, secret_id, token)
    elif step == "setSecret":
        pass  # the key lives only in the secret; the API reads it from there
    elif step == "testSecret":
        test_secret(client, secret_id, token)
    elif step == "finishSecret":
        finish_secret(client, secret_id, token)
    else:
        raise RotationError(f"unknown rotation step {step!r}")


def lambda_handler(event: dict[str, Any], context: object) -> None:
    """Secrets Manager's rotation entry point."""
    rotate(_client(), event)
