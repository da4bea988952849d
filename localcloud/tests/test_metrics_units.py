"""Units of localcloud.metrics that need no server: EMF extraction, item sizes, aggregation."""

from __future__ import annotations

import json

import pytest
from localcloud.metrics.aggregate import MetricAggregator, MetricId
from localcloud.metrics.dynamodb import attribute_size, item_size, read_units, write_units
from localcloud.metrics.emf import parse_emf


def _emf(**extra: object) -> dict[str, object]:
    document: dict[str, object] = {
        "_aws": {
            "Timestamp": 1_700_000_000_500,
            "CloudWatchMetrics": [
                {
                    "Namespace": "Alley",
                    "Dimensions": [["service"], ["service", "stage"]],
                    "Metrics": [{"Name": "Processed", "Unit": "Count"}, {"Name": "Latency"}],
                }
            ],
        },
        "service": "agg",
        "stage": "dev",
        "Processed": [1.0, 2.0, 3.0],
        "Latency": 12.5,
        "other": "ignored",
    }
    document.update(extra)
    return document


def test_powertools_line_yields_one_metric_per_dimension_set_and_value() -> None:
    samples = parse_emf(json.dumps(_emf()))
    processed = [s for s in samples if s.metric.name == "Processed"]
    assert {s.metric.dimensions for s in processed} == {
        (("service", "agg"),),
        (("service", "agg"), ("stage", "dev")),
    }
    assert sorted(s.value for s in processed) == [1.0, 1.0, 2.0, 2.0, 3.0, 3.0]
    assert all(s.metric.namespace == "Alley" and s.metric.unit == "Count" for s in processed)
    latency = [s for s in samples if s.metric.name == "Latency"]
    assert [s.value for s in latency] == [12.5, 12.5] and latency[0].metric.unit == "None"
    assert samples[0].timestamp == pytest.approx(1_700_000_000.5)


@pytest.mark.parametrize(
    "line",
    [
        'plain text mentioning "_aws"',
        json.dumps({"_aws": {"CloudWatchMetrics": []}}),  # no Timestamp
        json.dumps(_emf(service=7)),  # a dimension value must be a string
        json.dumps(_emf(stage=None)),
        '{"_aws": ',  # broken JSON
        json.dumps([1, 2]),
    ],
)
def test_lines_that_are_not_valid_emf_yield_nothing(line: str) -> None:
    assert parse_emf(line) == []


def test_missing_dimensions_mean_a_metric_without_dimensions() -> None:
    document = _emf()
    directive = document["_aws"]["CloudWatchMetrics"][0]  # type: ignore[index]
    del directive["Dimensions"]
    samples = parse_emf(json.dumps(document))
    assert {s.metric.dimensions for s in samples} == {()}


def test_item_size_follows_dynamodb_rules() -> None:
    assert attribute_size({"S": "héllo"}) == 6
    assert attribute_size({"N": "12345"}) == 4  # 5 significant digits -> 3 bytes + 1
    assert attribute_size({"BOOL": True}) == 1
    assert attribute_size({"L": [{"S": "ab"}, {"NULL": True}]}) == 3 + (1 + 2) + (1 + 1)
    assert item_size({"pk": {"S": "a"}, "payload": {"S": "x" * 100}}) == 2 + 1 + 7 + 100


def test_capacity_units_round_up_per_kilobyte_and_four_kilobytes() -> None:
    assert write_units(0) == 1 and write_units(1024) == 1 and write_units(1025) == 2
    assert read_units(4096, consistent=True) == 1 and read_units(4097, consistent=True) == 2
    assert read_units(100, consistent=False) == 0.5


def test_aggregator_keeps_exact_statistics_per_second() -> None:
    now = [1000.2]
    aggregator = MetricAggregator(clock=lambda: now[0])
    metric = MetricId("AWS/Kinesis", "IncomingRecords", (("StreamName", "s"),), "Count")
    aggregator.add(metric, 10)
    aggregator.add_all([(metric, 30)])
    now[0] = 1001.0
    aggregator.add(metric, 5)
    first, second = aggregator.drain()
    assert (first.second, first.stats.count, first.stats.total) == (1000, 2, 40)
    assert (first.stats.minimum, first.stats.maximum) == (10, 30)
    assert (second.second, second.stats.total) == (1001, 5)
    assert aggregator.drain() == []
