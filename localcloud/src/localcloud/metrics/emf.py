"""CloudWatch embedded metric format (EMF): metrics carried by structured log lines.

A line is an EMF document when it is a JSON object whose ``_aws`` member holds ``Timestamp``
(epoch milliseconds) and ``CloudWatchMetrics``: a list of directives, each with a ``Namespace``,
``Dimensions`` (a list of dimension sets, each a list of member names) and ``Metrics``
(``{"Name", "Unit"}``). Metric values and dimension values are top-level members: a value is a
number or a list of numbers (each one a sample), a dimension value a string. Every dimension set
yields one metric per metric definition, as CloudWatch Logs extracts them. Lines that break the
rules produce nothing (CloudWatch rejects such documents too); the log line itself is kept anyway.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from localcloud.metrics.aggregate import MetricId

MAX_DIMENSIONS = 30
MAX_VALUES = 100


@dataclass(frozen=True)
class EmfSample:
    """One value of one extracted metric, at ``timestamp`` (epoch seconds)."""

    metric: MetricId
    value: float
    timestamp: float


def parse_emf(line: str) -> list[EmfSample]:
    """The metric samples an EMF log line carries ([] when the line is not valid EMF)."""
    if '"_aws"' not in line:
        return []
    text = line.strip()
    if not text.startswith("{"):
        return []
    try:
        document = json.loads(text)
    except ValueError:
        return []
    if not isinstance(document, dict):
        return []
    metadata = document.get("_aws")
    if not isinstance(metadata, dict):
        return []
    timestamp = metadata.get("Timestamp")
    directives = metadata.get("CloudWatchMetrics")
    if (
        not isinstance(timestamp, int | float)
        or isinstance(timestamp, bool)
        or not isinstance(directives, list)
    ):
        return []
    samples: list[EmfSample] = []
    for directive in directives:
        samples += _directive_samples(document, directive, float(timestamp) / 1000.0)
    return samples


def _directive_samples(document: dict[str, Any], directive: Any, timestamp: float) -> list[EmfSample]:
    if not isinstance(directive, dict):
        return []
    namespace = directive.get("Namespace")
    dimension_sets = directive.get("Dimensions")
    definitions = directive.get("Metrics")
    if not isinstance(namespace, str) or not namespace or not isinstance(definitions, list):
        return []
    resolved = _dimension_sets(document, dimension_sets)
    if resolved is None:
        return []
    samples: list[EmfSample] = []
    for definition in definitions:
        if not isinstance(definition, dict) or not isinstance(definition.get("Name"), str):
            continue
        name = definition["Name"]
        unit = definition.get("Unit")
        unit = unit if isinstance(unit, str) and unit else "None"
        values = _values(document.get(name))
        for dimensions in resolved:
            metric = MetricId(namespace, name, dimensions, unit)
            samples += [EmfSample(metric, value, timestamp) for value in values]
    return samples


def _dimension_sets(document: dict[str, Any], sets: Any) -> list[tuple[tuple[str, str], ...]] | None:
    """Each dimension set with its values from the document; None when one is invalid."""
    if sets is None:
        return [()]
    if not isinstance(sets, list):
        return None
    resolved: list[tuple[tuple[str, str], ...]] = []
    for names in sets:
        if not isinstance(names, list) or len(names) > MAX_DIMENSIONS:
            return None
        pairs: list[tuple[str, str]] = []
        for name in names:
            value = document.get(name) if isinstance(name, str) else None
            if not isinstance(value, str):
                return None  # a dimension must name a string member
            pairs.append((name, value))
        resolved.append(tuple(pairs))
    return resolved or [()]


def _values(member: Any) -> list[float]:
    if _is_number(member):
        return [float(member)]
    if isinstance(member, list):
        return [float(v) for v in member[:MAX_VALUES] if _is_number(v)]
    return []


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
