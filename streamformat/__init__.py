"""The record formats on the Alleycat stream, encode and decode: what producers write, consumers read.

Producers and consumers both depend on this package and on nothing of each other, so a new consumer
(a KCL record processor, say) reads every record a producer can write by calling
:func:`read_messages`.

A Kinesis record's data is one of three things:

1. **A plain Alleycat message**: one JSON text (architecture.md's message contract). Devices, the
   IoT topic rule and third-party producers send these.

2. **A KPL aggregated record** (:mod:`streamformat.kpl`): the Kinesis Producer Library's format —
   magic ``F3 89 9A C2``, a protobuf ``AggregatedRecord``, then the MD5 of the protobuf — so any
   KPL-aware consumer (the KCL, Lambda with ``aws_kinesis_agg``) reads it too. Each user record
   inside is a plain message or a compressed batch. Alleycat aggregates per partition key (one race
   per aggregated record), so a race's messages stay on its shard, in order.

3. **An Alleycat compressed batch** (:mod:`streamformat.batch`), usually as the single user record
   of a KPL aggregate. Plain aggregation packs one user record per message, so a shard's 1 MiB/s
   carries only ~6,500 racers of ~150-byte JSON; compressed (~10:1), tens of thousands:

   =======  =======  =======================================================================
   offset   bytes    content
   =======  =======  =======================================================================
   0        4        magic ``00 41 43 42`` (``b"\\x00ACB"``; 0x00 can never start a JSON text)
   4        1        format version, ``01``
   5        rest     a zlib stream (RFC 1950, with its Adler-32 check) of the messages as
                     UTF-8 JSON, one per line: joined by ``\\n``, no trailing newline
   =======  =======  =======================================================================

   A message holding a newline cannot be a line: the producer sends it plain instead.

Neither magic can occur at the start of a valid JSON text, so the first bytes tell the three apart.
"""

from streamformat.batch import (
    BATCH_MAGIC,
    BATCH_VERSION,
    MAX_BATCH_BYTES,
    CorruptBatchError,
    batch_lines,
    decode_batch,
    encode_batch,
    is_batch,
)
from streamformat.kpl import MAGIC, MAX_RECORD_BYTES, deaggregate, encode_aggregated, is_aggregated
from streamformat.records import read_messages

__all__ = [
    "BATCH_MAGIC",
    "BATCH_VERSION",
    "MAGIC",
    "MAX_BATCH_BYTES",
    "MAX_RECORD_BYTES",
    "CorruptBatchError",
    "batch_lines",
    "deaggregate",
    "decode_batch",
    "encode_aggregated",
    "encode_batch",
    "is_aggregated",
    "is_batch",
    "read_messages",
]
