"""The leaderboard HTTP API: races, race leaderboards, racer neighbourhoods, class boards."""

from leaderboard.api.app import get_app, reset, router
from leaderboard.api.errors import InvalidCursorError, NotFoundError, RaceNotFoundError, RacerNotFoundError
from leaderboard.api.ranking import RaceRanking, RankingCache
from leaderboard.api.service import LeaderboardReads, LeaderboardService
from leaderboard.api.settings import ApiSettings, ConfigurationError

__all__ = [
    "ApiSettings",
    "ConfigurationError",
    "InvalidCursorError",
    "LeaderboardReads",
    "LeaderboardService",
    "NotFoundError",
    "RaceNotFoundError",
    "RaceRanking",
    "RacerNotFoundError",
    "RankingCache",
    "get_app",
    "reset",
    "router",
]
