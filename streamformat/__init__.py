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
Nesting goes one level deep at most: a KPL aggregate's user records are plain messages or compressed
batches; an aggregate inside an aggregate, or a batch's line, is one message, never unpacked.

**What one record may expand to** (:mod:`streamformat.bounds`). A Kinesis record is at most 1 MiB,
but zlib inflates up to ~1,000:1 and a KPL aggregate can hold hundreds of thousands of tiny user
records, so :func:`read_messages` reads each record against one budget shared by all its user
records and batches: at most :data:`MAX_RECORD_INFLATED_BYTES` (16 MiB) of messages and
:data:`MAX_RECORD_MESSAGES` (131,072) messages. Both are charged while decoding — inflated bytes as
zlib produces them (in 256 KiB slices), messages as lines and user records are found — and the
first byte or message over them raises :class:`RecordTooLargeError`, so a hostile record costs
tens of MiB and milliseconds, not gigabytes. No honest record comes near: Alleycat's producer puts
at most 1 MiB of lines (~7,000 messages) in a record, and even a whole 1 MiB record of compressed
simulator messages holds ~77,500 messages, ~12 MiB inflated. A consumer parks a record over the
bounds (it can never be read) and moves on.
"""

from streamformat.batch import (
    BATCH_MAGIC,
    BATCH_VERSION,
    MAX_BATCH_BYTES,
    BatchTooLargeError,
    CorruptBatchError,
    batch_lines,
    decode_batch,
    encode_batch,
    is_batch,
)
from streamformat.bounds import (
    DEFAULT_BOUNDS,
    MAX_RECORD_INFLATED_BYTES,
    MAX_RECORD_MESSAGES,
    ExpansionBudget,
    RecordBounds,
    RecordTooLargeError,
)
from streamformat.kpl import (
    MAGIC,
    MAX_RECORD_BYTES,
    deaggregate,
    encode_aggregated,
    is_aggregated,
    iter_user_records,
)
from streamformat.records import read_messages

__all__ = [
    "BATCH_MAGIC",
    "BATCH_VERSION",
    "DEFAULT_BOUNDS",
    "MAGIC",
    "MAX_BATCH_BYTES",
    "MAX_RECORD_BYTES",
    "MAX_RECORD_INFLATED_BYTES",
    "MAX_RECORD_MESSAGES",
    "BatchTooLargeError",
    "CorruptBatchError",
    "ExpansionBudget",
    "RecordBounds",
    "RecordTooLargeError",
    "batch_lines",
    "deaggregate",
    "decode_batch",
    "encode_aggregated",
    "encode_batch",
    "is_aggregated",
    "is_batch",
    "iter_user_records",
    "read_messages",
]
