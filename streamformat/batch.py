"""Alleycat compressed batches: many JSON messages, one per line, zlib-compressed behind a header.

The layout is described in the package docstring (:mod:`streamformat`).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

from streamformat.bounds import DEFAULT_BOUNDS, ExpansionBudget, RecordTooLargeError

BATCH_MAGIC: bytes = b"\x00ACB"
BATCH_VERSION = 1
_BATCH_HEADER = BATCH_MAGIC + bytes([BATCH_VERSION])
# zlib's default level: ~10:1 on racer messages at ~0.4 ms per 50 KB; level 9 gains 10% for 4x time.
BATCH_COMPRESSION_LEVEL = 6
# A batch lives inside one Kinesis record, so the record's bound is also the batch's: the one
# inflate bound, enforced across every batch of a record (see streamformat.bounds).
MAX_BATCH_BYTES = DEFAULT_BOUNDS.max_bytes
# Inflate in slices this big so that a bomb is caught within one slice of the bound.
_INFLATE_CHUNK = 256 * 1024


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


class BatchTooLargeError(CorruptBatchError, RecordTooLargeError):
    """A compressed batch that inflates past its record's bounds (bytes or messages)."""


def batch_lines(data: bytes, budget: ExpansionBudget | None = None) -> bytes:
    """The newline-separated messages of a compressed batch, decompressed and checked.

    ``budget`` is what is left of the record's bounds (a full one by default: the batch is the
    whole record); inflated bytes and lines are charged to it as zlib produces them, so a bomb
    stops within one slice of the bound instead of being inflated first and measured after.

    Raises :class:`CorruptBatchError` for an unknown version, a damaged or truncated stream or
    trailing bytes, and :class:`BatchTooLargeError` (also a
    :class:`~streamformat.bounds.RecordTooLargeError`) past the budget.
    """
    if not data.startswith(BATCH_MAGIC):
        raise CorruptBatchError("not a compressed batch")
    if len(data) <= len(_BATCH_HEADER) or data[len(BATCH_MAGIC)] != BATCH_VERSION:
        version = data[len(BATCH_MAGIC)] if len(data) > len(BATCH_MAGIC) else None
        raise CorruptBatchError(f"unsupported compressed batch version {version}")
    if budget is None:
        budget = ExpansionBudget()
    budget.spend(0, 1, BatchTooLargeError)  # a batch holds at least one line
    inflater = zlib.decompressobj()
    chunks: list[bytes] = []
    pending = data[len(_BATCH_HEADER) :]
    try:
        while not inflater.eof:
            # One byte over what is left is enough to know the bound is passed.
            chunk = inflater.decompress(pending, min(_INFLATE_CHUNK, budget.bytes_left + 1))
            budget.spend(len(chunk), chunk.count(b"\n"), BatchTooLargeError)
            pending = inflater.unconsumed_tail
            if not chunk and not pending:
                break  # all input consumed, no more output: the stream ends early
            chunks.append(chunk)
    except zlib.error as exc:
        raise CorruptBatchError(f"damaged compressed batch: {exc}") from exc
    if not inflater.eof:
        raise CorruptBatchError("truncated compressed batch")
    if inflater.unused_data:
        raise CorruptBatchError("bytes after the end of a compressed batch")
    return b"".join(chunks)


def decode_batch(data: bytes, budget: ExpansionBudget | None = None) -> list[bytes]:
    """The messages of a compressed batch, in order (raises :class:`CorruptBatchError`).

    ``budget`` as for :func:`batch_lines`.
    """
    return batch_lines(data, budget).split(b"\n")
