"""What can go wrong in a request, as typed exceptions; the app maps them to HTTP in one place."""

from __future__ import annotations

from leaderboard.api.cursor import InvalidCursorError


class NotFoundError(LookupError):
    """The addressed resource does not exist."""


class RaceNotFoundError(NotFoundError):
    """No race with this id."""

    def __init__(self, race_id: int) -> None:
        """Name the missing race."""
        super().__init__(f"race {race_id} not found")
        self.race_id = race_id


class RacerNotFoundError(NotFoundError):
    """The race exists but has no racer with this id."""

    def __init__(self, race_id: int, racer_id: int) -> None:
        """Name the missing racer."""
        super().__init__(f"racer {racer_id} not found in race {race_id}")
        self.race_id = race_id
        self.racer_id = racer_id


__all__ = ["InvalidCursorError", "NotFoundError", "RaceNotFoundError", "RacerNotFoundError"]
