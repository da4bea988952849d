"""Opaque, signed page cursors for keyset pagination.

A cursor carries the sort key of the last row a page returned (never an offset), so the next page
starts right after that row even when rows above it moved in the meantime. The client must not be
able to forge or edit one, nor replay one on another route or race, so a cursor is::

    base64url( JSON [version, scope, [key ints...]] || HMAC-SHA256(secret, JSON) )

``scope`` names what the cursor was issued for (e.g. ``race:5400802:leaderboard``) and is checked
on decode. The key is a short tuple of integers whose meaning belongs to the issuing endpoint.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass

# Version 2: score keys are in ten-thousandths (version 1's were hundredths, and would now resume a
# page at the wrong row), so a version 1 cursor is refused as expired.
CURSOR_VERSION = 2
_MAC_SIZE = hashlib.sha256().digest_size
# A key is a few integers; anything much longer than this was not issued by us. Checked before any
# decoding work so a huge garbage cursor costs nothing.
MAX_CURSOR_LENGTH = 512
MIN_SECRET_BYTES = 16


class InvalidCursorError(ValueError):
    """The cursor is garbled, forged, tampered with, or was issued for another request."""


@dataclass(frozen=True)
class CursorCodec:
    """Encodes and verifies cursors with one HMAC secret (shared by every instance of the API)."""

    secret: bytes

    def __post_init__(self) -> None:
        if len(self.secret) < MIN_SECRET_BYTES:
            raise ValueError(f"the cursor secret must be at least {MIN_SECRET_BYTES} bytes")

    def encode(self, scope: str, key: tuple[int, ...]) -> str:
        """The opaque cursor for ``key`` within ``scope``."""
        payload = json.dumps([CURSOR_VERSION, scope, list(key)], separators=(",", ":")).encode()
        token = payload + self._mac(payload)
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
        if not hmac.compare_digest(mac, self._mac(payload)):
            raise InvalidCursorError("cursor is not valid")
        # From here on the payload is ours, so a shape mismatch means a cursor from another version.
        try:
            version, issued_scope, key = json.loads(payload)
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

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self.secret, payload, hashlib.sha256).digest()
