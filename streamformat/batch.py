"""Alleycat compressed batches: many JSON messages, one per line, zlib-compressed behind a header.

The layout is described in the package docstring (:mod:`streamformat`).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

BATCH_MAGIC: bytes = b"\x00ACB"
BATCH_VERSION = 1
_BATCH_HEADER = BATCH_MAGIC + bytes([BATCH_VERSION])
# zlib's default level: ~10:1 on racer messages at ~0.4 ms per 50 KB; level 9 gains 10% for 4x time.
BATCH_COMPRESSION_LEVEL = 6
# A batch never legitimately inflates past this (its record is at most 1 MiB compressed from at most
# 1 MiB of lines); the bound keeps a hostile record from inflating without limit in the consumer.
MAX_BATCH_BYTES = 4 * 1024 * 1024


class CorruptBatchError(ValueError):
    """Data that starts like a compressed batch but cannot be read as one."""


def encode_batch(payloads: Sequence[bytes]) -> bytes:
    """Pack JSON messages into one compressed batch.

    Raises ``ValueError`` for no payloads or a payload holding a newline (it would split in two).
    """
    if not payloads:
        raise ValueError("a compressed batch holds at least one message")
    if any(b"\n" in payload for payload in payloads):
        raise ValueError("a message in a compressed batch cannot contain a newline")
    return _BATCH_HEADER + zlib.compress(b"\n".join(payloads), BATCH_COMPRESSION_LEVEL)


def is_batch(data: bytes) -> bool:
    """True if ``data`` starts with the compressed batch magic (whether or not it is intact)."""
    return data.startswith(BATCH_MAGIC)


def batch_lines(data: bytes) -> bytes:
    """The newline-separated messages of a compressed batch, decompressed and checked.

    Raises :class:`CorruptBatchError` for an unknown version, a damaged or truncated stream,
    trailing bytes, or more than ``MAX_BATCH_BYTES`` once inflated.
    """
    if not data.startswith(BATCH_MAGIC):
        raise CorruptBatchError("not a compressed batch")
    if len(data) <= len(_BATCH_HEADER) or data[len(BATCH_MAGIC)] != BATCH_VERSION:
        version = data[len(BATCH_MAGIC)] if len(data) > len(BATCH_MAGIC) else None
        raise CorruptBatchError(f"unsupported compressed batch version {version}")
    inflater = zlib.decompressobj()
    try:
        lines = inflater.decompress(data[len(_BATCH_HEADER) :], MAX_BATCH_BYTES)
    except zlib.error as exc:
        raise CorruptBatchError(f"damaged compressed batch: {exc}") from exc
    if inflater.unconsumed_tail:
        raise CorruptBatchError(f"compressed batch inflates past {MAX_BATCH_BYTES} bytes")
    if not inflater.eof:
        raise CorruptBatchError("truncated compressed batch")
    if inflater.unused_data:
        raise CorruptBatchError("bytes after the end of a compressed batch")
    return lines


def decode_batch(data: bytes) -> list[bytes]:
    """The messages of a compressed batch, in order (raises :class:`CorruptBatchError`)."""
    return batch_lines(data).split(b"\n")
