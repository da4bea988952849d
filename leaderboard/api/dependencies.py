"""Cached factories: settings, the AWS client and the service are built at first use, once.

Nothing is built at import time, so importing the API needs no environment; a warm function reuses
the client (its connection pool) and the ranking cache across invocations.
"""

from __future__ import annotations

import os
from functools import cache

import boto3
from botocore.config import Config

from leaderboard.adapters.queries import DynamoLeaderboardQueries
from leaderboard.api.cursor import CursorCodec
from leaderboard.api.ranking import RankingCache
from leaderboard.api.service import LeaderboardService
from leaderboard.api.settings import ApiSettings

# An API answer is worth little after a few seconds: fail fast and let the client retry.
_CLIENT_CONFIG = Config(
    connect_timeout=2,
    read_timeout=5,
    retries={"mode": "standard", "max_attempts": 3},
    tcp_keepalive=True,
)


@cache
def get_settings() -> ApiSettings:
    """The function's settings, validated on first use."""
    return ApiSettings.from_environ(os.environ)


@cache
def get_service() -> LeaderboardService:
    """The leaderboard service wired to DynamoDB."""
    settings = get_settings()
    client = boto3.client("dynamodb", config=_CLIENT_CONFIG)
    return LeaderboardService(
        reads=DynamoLeaderboardQueries(client, settings.table_name),
        cursors=CursorCodec(settings.cursor_secret.get_secret_value().encode()),
        rankings=RankingCache(settings.ranking_cache_races, settings.ranking_revalidate_ms / 1000),
    )
