"""Opaque, signed page cursors for keyset pagination.

A cursor carries the sort key of the last row a page returned (never an offset), so the next page
starts right after that row even when rows above it moved in the meantime. The client must not be
able to forge or edit one, nor replay one on another route or race, so a cursor is::

    base64url( JSON [version, key id, scope, [key ints...]] || HMAC-SHA256(secret of key id, JSON) )

``scope`` names what the cursor was issued for (e.g. ``race:5400802:leaderboard``) and is checked
on decode. The key is a short tuple of integers whose meaning belongs to the issuing endpoint.

The key id names the secret that signed the cursor, so the secret can rotate: a codec signs with
its current secret and verifies with any secret it still accepts (the deployed API accepts the
secret's AWSCURRENT and AWSPREVIOUS versions), and a page a client holds survives one rotation.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

# Version 2: score keys are in ten-thousandths (version 1's were hundredths, and would now resume a
# page at the wrong row), so a version 1 cursor is refused as expired. Version 3 adds the key id;
# a version 2 cursor is refused as expired too (it cannot say which secret signed it).
CURSOR_VERSION = 3
_MAC_SIZE = hashlib.sha256().digest_size
# A key is a few integers; anything much longer than this was not issued by us. Checked before any
# decoding work so a huge garbage cursor costs nothing.
MAX_CURSOR_LENGTH = 512
MIN_SECRET_BYTES = 16


class InvalidCursorError(ValueError):
    """The cursor is garbled, forged, tampered with, or was issued for another request."""


class Cursors(Protocol):
    """What the service needs of cursors: issue one, and read one back (or refuse it)."""

    def encode(self, scope: str, key: tuple[int, ...]) -> str:
        """The opaque cursor for ``key`` within ``scope``."""
        ...

    def decode(self, cursor: str, scope: str, arity: int) -> tuple[int, ...]:
        """The key of a cursor issued for ``scope`` with ``arity`` integers; else InvalidCursorError."""
        ...


def key_id_of(cursor: str) -> str | None:
    """The key id a well-formed cursor names (not verified), or None when it names none."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        decoded = json.loads(raw[:-_MAC_SIZE])
    except (binascii.Error, ValueError, TypeError):
        return None
    if isinstance(decoded, list) and len(decoded) == 4 and isinstance(decoded[1], str):
        return decoded[1]
    return None


@dataclass(frozen=True)
class CursorCodec:
    """Encodes with one HMAC secret and verifies with it or with the ``accepted`` older ones.

    Every instance of the API must hold the same secrets, or a cursor issued by one is refused by
    another; ``key_id`` tells them apart.
    """

    secret: bytes
    key_id: str = "static"
    accepted: Mapping[str, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for secret in (self.secret, *self.accepted.values()):
            if len(secret) < MIN_SECRET_BYTES:
                raise ValueError(f"the cursor secret must be at least {MIN_SECRET_BYTES} bytes")

    def knows(self, key_id: str) -> bool:
        """Whether cursors signed under ``key_id`` can be verified."""
        return key_id == self.key_id or key_id in self.accepted

    def encode(self, scope: str, key: tuple[int, ...]) -> str:
        """The opaque cursor for ``key`` within ``scope``."""
        payload = json.dumps([CURSOR_VERSION, self.key_id, scope, list(key)], separators=(",", ":")).encode()
        token = payload + self._mac(self.secret, payload)
        return base64.urlsafe_b64encode(token).rstrip(b"=").decode("ascii")

    def decode(self, cursor: str, scope: str, arity: int) -> tuple[int, ...]:
        """The key of a cursor issued for ``scope`` with ``arity`` integers; else InvalidCursorError."""
        if not cursor or len(cursor) > MAX_CURSOR_LENGTH:
            raise InvalidCursorError("cursor is not valid")
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        except (binascii.Error, ValueError) as exc:
            raise InvalidCursorError("cursor is not valid") from exc
        if len(raw) <= _MAC_SIZE:
            raise InvalidCursorError("cursor is not valid")
        payload, mac = raw[:-_MAC_SIZE], raw[-_MAC_SIZE:]
        key_id = key_id_of(cursor)
        secret = self.secret if key_id == self.key_id else self.accepted.get(key_id or "")
        if secret is None:
            # Signed with a secret rotated out since (or never ours, or an older cursor version).
            raise InvalidCursorError("cursor has expired; start again from the first page")
        if not hmac.compare_digest(mac, self._mac(secret, payload)):
            raise InvalidCursorError("cursor is not valid")
        # From here on the payload is ours, so a shape mismatch means a cursor from another version.
        try:
            version, _, issued_scope, key = json.loads(payload)
        except (ValueError, TypeError) as exc:
            raise InvalidCursorError("cursor is not valid") from exc
        if version != CURSOR_VERSION:
            raise InvalidCursorError("cursor has expired; start again from the first page")
        if issued_scope != scope:
            raise InvalidCursorError("cursor was issued for a different request")
        if (
            not isinstance(key, list)
            or len(key) != arity
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in key)
        ):
            raise InvalidCursorError("cursor is not valid")
        return tuple(key)

    @staticmethod
    def _mac(secret: bytes, payload: bytes) -> bytes:
        return hmac.new(secret, payload, hashlib.sha256).digest()
