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
from leaderboard.api.cursor import CursorCodec, Cursors
from leaderboard.api.cursor_keys import SecretCursorKeys
from leaderboard.api.ranking import RankingCache, RecentReads
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
        cursors=get_cursors(),
        rankings=RankingCache(settings.ranking_cache_races, settings.ranking_revalidate_ms / 1000),
        # Class boards are kept as long as a live race's ranking goes unconfirmed.
        class_pages=RecentReads(256, settings.ranking_revalidate_ms / 1000),
    )


@cache
def get_cursors() -> Cursors:
    """Cursors signed with the secret from Secrets Manager (or the fixed key, when one is set)."""
    settings = get_settings()
    if settings.cursor_secret is not None:
        return CursorCodec(settings.cursor_secret.get_secret_value().encode())
    assert settings.cursor_secret_id is not None  # the settings hold one of the two
    client = boto3.client("secretsmanager", config=_CLIENT_CONFIG)
    keys = SecretCursorKeys(settings.cursor_secret_id, client, max_age_s=settings.cursor_secret_max_age_s)
    keys.codec()  # at cold start: a missing secret or grant fails the first request, not a later page
    return keys
