"""Reading any record on the stream: plain, KPL-aggregated, compressed, or a mix."""

from __future__ import annotations

from streamformat.batch import BATCH_MAGIC, decode_batch
from streamformat.kpl import deaggregate


def read_messages(data: bytes) -> list[bytes]:
    """Every Alleycat message in a Kinesis record's data, in order: what consumers should call.

    Plain records, KPL aggregates (as :func:`~streamformat.kpl.deaggregate`) and compressed batches,
    in an aggregate or on their own, all come out as the list of JSON messages they carry. A
    compressed batch that cannot be read raises
    :class:`~streamformat.batch.CorruptBatchError` (a ``ValueError``): the caller parks the record.
    """
    payloads: list[bytes] = []
    for payload in deaggregate(data):
        if payload.startswith(BATCH_MAGIC):
            payloads += decode_batch(payload)
        else:
            payloads.append(payload)
    return payloads
