"""Value objects the producer hands back: failures, flush results and counters."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FailedRecord:
    """A user record Kinesis did not accept before its deadline (or could never accept).

    ``data`` is the caller's original payload, also when aggregation packed it with others, so the
    caller can log it, park it or send it again.
    """

    partition_key: str
    data: bytes
    error_code: str
    error_message: str
    attempts: int


@dataclass(frozen=True, slots=True)
class PutResult:
    """What a :meth:`~producers.KinesisProducer.flush` or ``close`` settled."""

    failed: tuple[FailedRecord, ...] = ()

    @property
    def ok(self) -> bool:
        """True when no record failed."""
        return not self.failed

    def failures_by_code(self) -> dict[str, int]:
        """Count failed records per Kinesis error code."""
        return dict(Counter(f.error_code for f in self.failed))


@dataclass(frozen=True, slots=True)
class ProducerStats:
    """A consistent snapshot of the producer's counters.

    ``sent``, ``retried`` and ``failed`` count user records (what the caller passed to ``put``);
    ``kinesis_records`` counts records as Kinesis sees them, which differ only with aggregation.
    ``bytes`` is data plus partition key of the Kinesis records accepted; ``requests`` counts
    PutRecords calls, retries included.
    """

    sent: int = 0
    retried: int = 0
    failed: int = 0
    bytes: int = 0
    requests: int = 0
    kinesis_records: int = 0
