"""The cursor secret, read from AWS Secrets Manager at run time and followed through rotations.

The secret is never in the function's configuration (anyone allowed ``GetFunctionConfiguration``
would read it there, and a new value would need a redeploy). The API reads it with powertools'
parameters utility, cached for ``max_age`` seconds, and signs with the ``AWSCURRENT`` version while
accepting ``AWSPREVIOUS`` too, so a rotation never breaks a page a client holds; a cursor signed two
rotations ago names a key id neither version has, and is refused.

A secret version's value is ``{"keyId": ..., "secret": ...}`` (the rotation function writes the
version's own id as ``keyId``); a plain string is read as the key ``"initial"``, so a secret created
before key ids existed keeps working.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

from leaderboard.api.cursor import CursorCodec, key_id_of

CURRENT, PREVIOUS = "AWSCURRENT", "AWSPREVIOUS"
PLAIN_KEY_ID = "initial"
# A cursor naming a key this instance has not seen may come from an instance that read the secret
# after a rotation: read it again at once, but not more often than this, so garbage cursors cannot
# turn into a stream of Secrets Manager calls.
REFRESH_INTERVAL_S = 10.0


def parse_secret_value(value: str) -> tuple[str, bytes]:
    """(key id, secret bytes) of one secret version's value."""
    try:
        document = json.loads(value)
    except ValueError:
        return PLAIN_KEY_ID, value.encode()
    if isinstance(document, dict) and isinstance(document.get("keyId"), str):
        return document["keyId"], str(document.get("secret", "")).encode()
    return PLAIN_KEY_ID, value.encode()


class SecretCursorKeys:
    """Cursors signed with the secret's current version, verified with its current or previous one.

    Implements :class:`~leaderboard.api.cursor.Cursors`; build one per process (it holds the cache).
    """

    def __init__(
        self,
        secret_id: str,
        client: Any,
        *,
        max_age_s: int = 300,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.secret_id = secret_id
        self.max_age_s = max_age_s
        self._clock = clock
        # powertools' cache key is the secret's name alone, whatever VersionStage is asked for,
        # so each stage gets its own provider (its own cache).
        self._current = SecretsProvider(boto3_client=client)
        self._previous = SecretsProvider(boto3_client=client)
        self._lock = threading.Lock()
        self._last_forced = -REFRESH_INTERVAL_S

    def codec(self, *, force: bool = False) -> CursorCodec:
        """The codec for the secret as last read (read again once ``max_age_s`` has passed)."""
        key_id, secret = parse_secret_value(self._stage(self._current, CURRENT, force))
        accepted: dict[str, bytes] = {}
        try:
            previous_id, previous = parse_secret_value(self._stage(self._previous, PREVIOUS, force))
        except GetParameterError:
            pass  # never rotated yet: there is no previous version
        else:
            if previous_id != key_id:
                accepted[previous_id] = previous
        return CursorCodec(secret, key_id, accepted)

    def encode(self, scope: str, key: tuple[int, ...]) -> str:
        """A cursor signed with the current secret."""
        return self.codec().encode(scope, key)

    def decode(self, cursor: str, scope: str, arity: int) -> tuple[int, ...]:
        """Verify with the current or previous secret, re-reading them once for an unknown key id."""
        codec = self.codec()
        key_id = key_id_of(cursor)
        if key_id is not None and not codec.knows(key_id) and self._may_force():
            codec = self.codec(force=True)
        return codec.decode(cursor, scope, arity)

    def _may_force(self) -> bool:
        with self._lock:
            now = self._clock()
            if now - self._last_forced < REFRESH_INTERVAL_S:
                return False
            self._last_forced = now
            return True

    def _stage(self, provider: SecretsProvider, stage: str, force: bool) -> str:
        value = provider.get(self.secret_id, max_age=self.max_age_s, force_fetch=force, VersionStage=stage)
        if isinstance(value, bytes):
            return value.decode()
        return str(value)


__all__ = ["CURRENT", "PREVIOUS", "SecretCursorKeys", "parse_secret_value"]
