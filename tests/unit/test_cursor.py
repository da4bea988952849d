"""Signed keyset cursors: they round-trip, and anything not issued for this request is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leaderboard.api.cursor import CursorCodec, InvalidCursorError

SECRET = b"cursor-secret-for-tests-0123456789"
codec = CursorCodec(SECRET)


def _raw(cursor: str) -> bytes:
    return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))


def _token(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@given(
    scope=st.text(min_size=1, max_size=40),
    key=st.lists(st.integers(min_value=-(2**63), max_value=2**63), min_size=1, max_size=4).map(tuple),
)
def test_round_trip_returns_the_key(scope: str, key: tuple[int, ...]) -> None:
    # Given a cursor issued for a scope, When decoded for that scope, Then the key comes back.
    assert codec.decode(codec.encode(scope, key), scope, len(key)) == key


def test_cursor_is_opaque_url_safe_text() -> None:
    cursor = codec.encode("race:1:leaderboard", (12345, 7))
    assert cursor.isascii()
    assert not set(cursor) & set("+/= ")


def test_every_single_byte_change_is_detected() -> None:
    cursor = codec.encode("race:1:leaderboard", (12345, 7))
    raw = _raw(cursor)
    for i in range(len(raw)):
        tampered = raw[:i] + bytes([raw[i] ^ 0x01]) + raw[i + 1 :]
        with pytest.raises(InvalidCursorError):
            codec.decode(_token(tampered), "race:1:leaderboard", 2)


def test_edited_key_with_the_old_signature_is_refused() -> None:
    # A client rewriting the readable payload (e.g. to jump ahead) cannot re-sign it.
    raw = _raw(codec.encode("race:1:leaderboard", (12345, 7)))
    payload, mac = raw[:-32], raw[-32:]
    forged = json.dumps([1, "race:1:leaderboard", [1, 7]], separators=(",", ":")).encode()
    assert forged != payload
    with pytest.raises(InvalidCursorError):
        codec.decode(_token(forged + mac), "race:1:leaderboard", 2)


def test_cursor_for_another_scope_is_refused() -> None:
    cursor = codec.encode("race:1:leaderboard", (12345, 7))
    with pytest.raises(InvalidCursorError, match="different request"):
        codec.decode(cursor, "race:2:leaderboard", 2)


def test_cursor_signed_with_another_secret_is_refused() -> None:
    other = CursorCodec(b"another-secret-entirely-0123456789")
    with pytest.raises(InvalidCursorError):
        codec.decode(other.encode("race:1:leaderboard", (1, 2)), "race:1:leaderboard", 2)


def test_key_of_the_wrong_shape_is_refused() -> None:
    cursor = codec.encode("races", (5,))
    with pytest.raises(InvalidCursorError):
        codec.decode(cursor, "races", 2)


@pytest.mark.parametrize("garbage", ["", "zzz", "!!!!", "a" * 600, "=" * 8, _token(b"short")])
def test_garbage_is_refused(garbage: str) -> None:
    with pytest.raises(InvalidCursorError):
        codec.decode(garbage, "races", 1)


def test_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="at least"):
        CursorCodec(b"short")


def test_a_cursor_from_before_scores_moved_to_ten_thousandths_has_expired() -> None:
    # Given a genuine version 1 cursor (its key a total in hundredths), signed with our secret
    payload = json.dumps([1, "race:1:leaderboard", [12345, 7]], separators=(",", ":")).encode()
    old = _token(payload + hmac.new(SECRET, payload, hashlib.sha256).digest())
    # Then it is refused rather than resuming the page at the wrong row
    with pytest.raises(InvalidCursorError, match="expired"):
        codec.decode(old, "race:1:leaderboard", 2)


def test_a_cursor_verifies_under_an_accepted_older_key_and_not_once_that_key_is_dropped() -> None:
    # Given a cursor signed with key k1, and a rotation to k2 that still accepts k1
    old = CursorCodec(SECRET, "k1")
    cursor = old.encode("race:1:leaderboard", (5, 6))
    rotated = CursorCodec(b"second-secret-for-tests-0123456789", "k2", {"k1": SECRET})
    # Then the cursor still decodes, and new cursors name k2
    assert rotated.decode(cursor, "race:1:leaderboard", 2) == (5, 6)
    assert rotated.knows("k1") and rotated.knows("k2") and not rotated.knows("k0")
    # When a second rotation drops k1, Then the cursor is refused as expired
    twice = CursorCodec(b"third-secret-for-tests-0123456789", "k3", {"k2": rotated.secret})
    with pytest.raises(InvalidCursorError, match="expired"):
        twice.decode(cursor, "race:1:leaderboard", 2)
    # And a cursor claiming an accepted key id but signed with another secret is refused
    forged = CursorCodec(b"attacker-secret-0123456789abcdef", "k2").encode("race:1:leaderboard", (5, 6))
    with pytest.raises(InvalidCursorError, match="not valid"):
        twice.decode(forged, "race:1:leaderboard", 2)
