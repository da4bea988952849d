"""Order-insensitive, idempotent scoring.

Two shapes carry scores:

* :class:`RacerDelta` — what a batch or window saw for one racer: an explicit ``second -> output``
  map. Deltas form a join-semilattice under :meth:`RacerDelta.join` (union of seconds), so joining
  is commutative, associative and idempotent.
* :class:`RacerScore` — what is stored per racer: the running total plus a bitmap of the seconds
  already counted. :meth:`RacerScore.apply` adds only seconds not yet in the bitmap, so applying the
  same delta twice, applying deltas in any order, or applying their join gives the same score.

A given (racer, second) is expected to carry one output. If two messages for the same second
disagree, a delta keeps the larger output (deterministic regardless of order) and a stored score keeps
the first one counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(slots=True)
class RacerDelta:
    """Per-second outputs (ten-thousandths) seen for one racer in one batch or window."""

    name: str
    outputs: dict[int, int] = field(default_factory=dict)
    final_second: int | None = None
    # The latest second in ``outputs`` (-1 when empty), kept up to date so adding stays O(1).
    last_second: int = -1

    def __post_init__(self) -> None:
        if self.outputs and self.last_second < 0:
            self.last_second = max(self.outputs)

    def add(self, second: int, output: int, *, name: str, final: bool) -> None:
        """Record one message's contribution."""
        previous = self.outputs.get(second)
        if previous is None or output > previous:
            self.outputs[second] = output
        if second >= self.last_second:
            self.last_second = second
            self.name = name
        if final and (self.final_second is None or second > self.final_second):
            self.final_second = second

    def join(self, other: RacerDelta) -> RacerDelta:
        """The union of two deltas; commutative, associative and idempotent."""
        outputs = dict(self.outputs)
        for second, output in other.outputs.items():
            mine = outputs.get(second)
            if mine is None or output > mine:
                outputs[second] = output
        # The name travels with the latest second; ties resolved by value so the result is order-free.
        candidates = [(self.last_second, self.name), (other.last_second, other.name)]
        name = max(candidates)[1]
        finals = [s for s in (self.final_second, other.final_second) if s is not None]
        return RacerDelta(name=name, outputs=outputs, final_second=max(finals) if finals else None)


@dataclass(frozen=True)
class RacerScore:
    """A racer's stored standing: total of the distinct seconds counted so far."""

    racer_id: int
    name: str
    total: int = 0  # ten-thousandths
    seen: int = 0  # bitmap: bit s set when second s has been counted
    last_second: int = -1
    last_output: int = 0  # ten-thousandths, the output at last_second
    final: bool = False

    @property
    def seconds_counted(self) -> int:
        """How many distinct seconds the total covers."""
        return self.seen.bit_count()

    def has_second(self, second: int) -> bool:
        """Whether ``second`` is already counted."""
        return bool(self.seen >> second & 1)

    def apply(self, delta: RacerDelta) -> RacerScore:
        """Count the delta's seconds that are not counted yet; idempotent and order-insensitive."""
        total, seen = self.total, self.seen
        last_second, last_output = self.last_second, self.last_output
        for second, output in delta.outputs.items():
            bit = 1 << second
            if seen & bit:
                continue
            seen |= bit
            total += output
            if second > last_second:
                last_second, last_output = second, output
        name = delta.name if delta.outputs and delta.last_second >= self.last_second else self.name
        final = self.final or delta.final_second is not None
        if (total, seen, last_second, name, final) == (
            self.total,
            self.seen,
            self.last_second,
            self.name,
            self.final,
        ):
            return self
        return replace(
            self,
            name=name,
            total=total,
            seen=seen,
            last_second=last_second,
            last_output=last_output,
            final=final,
        )


def seen_to_bytes(seen: int) -> bytes:
    """The seconds bitmap as compact little-endian bytes (for storage)."""
    return seen.to_bytes((seen.bit_length() + 7) // 8 or 1, "little")


def seen_from_bytes(data: bytes) -> int:
    """Inverse of :func:`seen_to_bytes`."""
    return int.from_bytes(data, "little")
