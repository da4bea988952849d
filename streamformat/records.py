"""Reading any record on the stream: plain, KPL-aggregated, compressed, or a mix."""

from __future__ import annotations

from streamformat.batch import BATCH_MAGIC, decode_batch
from streamformat.bounds import DEFAULT_BOUNDS, ExpansionBudget, RecordBounds
from streamformat.kpl import iter_user_records


def read_messages(data: bytes, bounds: RecordBounds = DEFAULT_BOUNDS) -> list[bytes]:
    """Every Alleycat message in a Kinesis record's data, in order: what consumers should call.

    Plain records, KPL aggregates (as :func:`~streamformat.kpl.deaggregate`) and compressed batches,
    in an aggregate or on their own, all come out as the list of JSON messages they carry. A
    compressed batch that cannot be read raises
    :class:`~streamformat.batch.CorruptBatchError` (a ``ValueError``), and a record expanding past
    ``bounds`` (bytes of messages or their number, over all its user records and batches together)
    raises :class:`~streamformat.bounds.RecordTooLargeError` (a ``ValueError``) as soon as it does,
    before the rest is decoded: either way the caller parks the record.
    """
    budget = ExpansionBudget(bounds)
    payloads: list[bytes] = []
    for payload in iter_user_records(data):
        if payload.startswith(BATCH_MAGIC):
            payloads += decode_batch(payload, budget)
        else:
            budget.spend(len(payload), 1)
            payloads.append(payload)
    return payloads
