"""The domain core: messages, scoring, ranking, window accumulation. No boto3, no event shapes."""

from leaderboard.domain.messages import (
    MalformedMessageError,
    RacerMessage,
    e4_to_output,
    output_e4,
    outputs_e4,
    parse_message,
)
from leaderboard.domain.ports import MergeOutcome, RaceStore, ShardProgress
from leaderboard.domain.race import (
    BUCKET_SIZE,
    FinalResult,
    RaceDelta,
    RaceSummary,
    apply_to_bucket,
    bucket_of,
)
from leaderboard.domain.ranking import Standing, order_key, rank_scores
from leaderboard.domain.scoring import RacerDelta, RacerScore
from leaderboard.domain.service import WindowReport, apply_window, close_stale_races
from leaderboard.domain.window import CorruptWindowError, WindowAccumulator

__all__ = [
    "BUCKET_SIZE",
    "CorruptWindowError",
    "FinalResult",
    "MalformedMessageError",
    "MergeOutcome",
    "RaceDelta",
    "RaceStore",
    "RaceSummary",
    "RacerDelta",
    "RacerMessage",
    "RacerScore",
    "ShardProgress",
    "Standing",
    "WindowAccumulator",
    "WindowReport",
    "apply_to_bucket",
    "apply_window",
    "bucket_of",
    "close_stale_races",
    "e4_to_output",
    "order_key",
    "output_e4",
    "outputs_e4",
    "parse_message",
    "rank_scores",
]
