"""The race summary's per-bucket counts: versions only move forward, whatever order writers report in."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from leaderboard.domain.race import BucketCount, merge_bucket_counts


def test_a_stale_observation_never_replaces_a_newer_count() -> None:
    # Given bucket 0 recorded at version 5 with 10 racers, 4 finished
    recorded = {0: BucketCount(racers=10, finished=4, version=5)}
    # When a writer that read the bucket earlier reports version 3 with fewer racers
    merged = merge_bucket_counts(recorded, {0: BucketCount(racers=8, finished=1, version=3)})
    # Then the newer count stays
    assert merged == recorded


def test_a_newer_observation_replaces_the_count_and_new_buckets_join() -> None:
    recorded = {0: BucketCount(racers=10, finished=4, version=5)}
    observed = {
        0: BucketCount(racers=12, finished=4, version=6),
        1: BucketCount(racers=3, finished=0, version=1),
    }
    assert merge_bucket_counts(recorded, observed) == observed


def test_the_same_version_keeps_what_was_recorded() -> None:
    recorded = {0: BucketCount(racers=10, finished=4, version=5)}
    assert merge_bucket_counts(recorded, {0: BucketCount(racers=10, finished=4, version=5)}) == recorded


def test_merging_leaves_its_inputs_alone() -> None:
    recorded = {0: BucketCount(racers=10, finished=4, version=5)}
    merge_bucket_counts(recorded, {0: BucketCount(racers=12, finished=5, version=6)})
    assert recorded == {0: BucketCount(racers=10, finished=4, version=5)}


# A bucket's count at a version is a function of the version (one writer wins each version).
def count_at(bucket: int, version: int) -> BucketCount:
    return BucketCount(racers=version * 3 + bucket, finished=version + bucket, version=version)


observations = st.lists(
    st.dictionaries(st.integers(0, 3), st.integers(1, 20), max_size=4).map(
        lambda seen: {b: count_at(b, v) for b, v in seen.items()}
    ),
    max_size=8,
)


@given(observations, st.randoms())
@settings(deadline=None)  # a busy machine must not fail it on time
def test_any_order_of_reports_converges_on_each_buckets_newest_count(
    reports: list[dict[int, BucketCount]], rnd: object
) -> None:
    """Writers report what they saw in any order; the summary ends with the newest count per bucket."""
    shuffled = list(reports)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    merged: dict[int, BucketCount] = {}
    for report in shuffled:
        before = merged
        merged = merge_bucket_counts(merged, report)
        # versions never go back
        assert all(merged[b].version >= count.version for b, count in before.items())
    newest: dict[int, int] = {}
    for report in reports:
        for bucket, count in report.items():
            newest[bucket] = max(newest.get(bucket, 0), count.version)
    assert merged == {b: count_at(b, v) for b, v in newest.items()}
