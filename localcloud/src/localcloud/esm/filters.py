"""Lambda event filtering: EventBridge pattern matching over stream records.

A mapping's FilterCriteria holds up to five patterns; a record is delivered when any pattern
matches it and is otherwise consumed without invoking the function. Kinesis mappings filter only on
``data`` (the record's payload decoded as JSON); DynamoDB mappings filter on the Lambda record
(``eventName``, ``dynamodb``, ...).
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import ipaddress
import json
from collections.abc import Mapping, Sequence
from typing import Any

MAX_FILTERS = 5
_NUMERIC_OPS = ("=", "<", "<=", ">", ">=")


class PatternError(ValueError):
    """A filter pattern is not valid EventBridge pattern syntax."""


class _Missing:
    """Marks a field that is absent from the event (distinct from JSON null)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class EventPattern:
    """One compiled EventBridge pattern."""

    def __init__(self, pattern: str | Mapping[str, Any]) -> None:
        if isinstance(pattern, str):
            try:
                parsed = json.loads(pattern)
            except json.JSONDecodeError as exc:
                raise PatternError(f"pattern is not JSON: {exc}") from exc
        else:
            parsed = dict(pattern)
        if not isinstance(parsed, dict):
            raise PatternError("a pattern must be a JSON object")
        _validate(parsed)
        self.pattern: dict[str, Any] = parsed

    def matches(self, event: Any) -> bool:
        """True when ``event`` (a decoded JSON value) satisfies the pattern."""
        return _match_object(self.pattern, event)

    def references(self, key: str) -> bool:
        """True when the pattern tests the top-level field ``key`` (directly or inside ``$or``)."""
        return _references(self.pattern, key)


def _references(pattern: Mapping[str, Any], key: str) -> bool:
    if key in pattern:
        return True
    return any(_references(alt, key) for alt in pattern.get("$or", []))


def _validate(pattern: Mapping[str, Any]) -> None:
    for key, rule in pattern.items():
        if key == "$or":
            if not isinstance(rule, list) or len(rule) < 2 or not all(isinstance(r, dict) for r in rule):
                raise PatternError("$or needs a list of at least two patterns")
            for alternative in rule:
                _validate(alternative)
        elif isinstance(rule, dict):
            _validate(rule)
        elif isinstance(rule, list):
            if not rule:
                raise PatternError(f"empty match list for {key!r}")
            for matcher in rule:
                _validate_matcher(key, matcher)
        else:
            raise PatternError(f"match values for {key!r} must be in a list")


def _validate_matcher(key: str, matcher: Any) -> None:
    if matcher is None or isinstance(matcher, str | bool) or _is_number(matcher):
        return
    if not isinstance(matcher, dict) or len(matcher) != 1:
        raise PatternError(f"bad matcher for {key!r}: {matcher!r}")
    ((op, arg),) = matcher.items()
    if op in ("prefix", "suffix"):
        if not (isinstance(arg, str) or (isinstance(arg, dict) and set(arg) == {"equals-ignore-case"})):
            raise PatternError(f"{op} needs a string")
    elif op == "equals-ignore-case":
        if not isinstance(arg, str):
            raise PatternError("equals-ignore-case needs a string")
    elif op == "exists":
        if not isinstance(arg, bool):
            raise PatternError("exists needs true or false")
    elif op == "numeric":
        if not isinstance(arg, list) or not arg or len(arg) % 2:
            raise PatternError("numeric needs operator/value pairs")
        for index in range(0, len(arg), 2):
            if arg[index] not in _NUMERIC_OPS or not _is_number(arg[index + 1]):
                raise PatternError(f"bad numeric comparison {arg[index : index + 2]!r}")
    elif op == "anything-but":
        if isinstance(arg, dict):
            if len(arg) != 1 or next(iter(arg)) not in ("prefix", "suffix", "equals-ignore-case", "wildcard"):
                raise PatternError(f"bad anything-but {arg!r}")
        elif isinstance(arg, list) and not all(v is None or isinstance(v, str) or _is_number(v) for v in arg):
            raise PatternError("anything-but list must hold strings or numbers")
    elif op == "cidr":
        try:
            ipaddress.ip_network(str(arg), strict=False)
        except ValueError as exc:
            raise PatternError(f"bad cidr {arg!r}") from exc
    elif op == "wildcard":
        if not isinstance(arg, str):
            raise PatternError("wildcard needs a string")
    else:
        raise PatternError(f"unknown operator {op!r}")


def _match_object(pattern: Mapping[str, Any], event: Any) -> bool:
    # A pattern over a non-object (or missing object) behaves as over an empty object, so that
    # {"exists": false} rules still match.
    fields: Mapping[str, Any] = event if isinstance(event, Mapping) else {}
    for key, rule in pattern.items():
        if key == "$or":
            if not any(_match_object(alternative, event) for alternative in rule):
                return False
            continue
        value = fields.get(key, MISSING)
        if isinstance(rule, dict):
            if isinstance(value, list):
                # An array of objects matches when any element matches.
                if not any(_match_object(rule, element) for element in value if isinstance(element, Mapping)):
                    return False
            elif not _match_object(rule, value):
                return False
        elif not _match_leaf(rule, value):
            return False
    return True


def _match_leaf(matchers: Sequence[Any], value: Any) -> bool:
    for matcher in matchers:
        if isinstance(matcher, dict) and "exists" in matcher:
            present = value is not MISSING and not isinstance(value, Mapping)
            if matcher["exists"] == present:
                return True
            continue
        if value is MISSING:
            continue
        candidates = value if isinstance(value, list) else [value]
        if any(_match_value(matcher, candidate) for candidate in candidates):
            return True
    return False


def _equals(expected: Any, actual: Any) -> bool:
    if expected is None:
        return actual is None
    if isinstance(expected, bool):
        return isinstance(actual, bool) and actual == expected
    if _is_number(expected):
        return _is_number(actual) and float(actual) == float(expected)
    return isinstance(actual, str) and actual == expected


def _affix(op: str, arg: Any, actual: Any) -> bool:
    if not isinstance(actual, str):
        return False
    if isinstance(arg, dict):
        needle, haystack = str(arg["equals-ignore-case"]).casefold(), actual.casefold()
    else:
        needle, haystack = arg, actual
    return haystack.startswith(needle) if op == "prefix" else haystack.endswith(needle)


def _match_value(matcher: Any, actual: Any) -> bool:
    if not isinstance(matcher, dict):
        return _equals(matcher, actual)
    ((op, arg),) = matcher.items()
    if op in ("prefix", "suffix"):
        return _affix(op, arg, actual)
    if op == "equals-ignore-case":
        return isinstance(actual, str) and actual.casefold() == str(arg).casefold()
    if op == "numeric":
        return _is_number(actual) and _numeric(arg, float(actual))
    if op == "anything-but":
        return _anything_but(arg, actual)
    if op == "cidr":
        return _cidr(str(arg), actual)
    if op == "wildcard":
        return isinstance(actual, str) and _wildcard(str(arg), actual)
    return False


def _numeric(comparisons: Sequence[Any], actual: float) -> bool:
    for index in range(0, len(comparisons), 2):
        op, bound = comparisons[index], float(comparisons[index + 1])
        ok = {
            "=": actual == bound,
            "<": actual < bound,
            "<=": actual <= bound,
            ">": actual > bound,
            ">=": actual >= bound,
        }[op]
        if not ok:
            return False
    return True


def _anything_but(arg: Any, actual: Any) -> bool:
    if isinstance(arg, dict):
        ((op, inner),) = arg.items()
        if not isinstance(actual, str):
            return False
        if op in ("prefix", "suffix"):
            return not _affix(op, inner, actual)
        if op == "wildcard":
            return not _wildcard(str(inner), actual)
        values = inner if isinstance(inner, list) else [inner]
        return all(actual.casefold() != str(v).casefold() for v in values)
    values = arg if isinstance(arg, list) else [arg]
    return not any(_equals(v, actual) for v in values)


def _cidr(network: str, actual: Any) -> bool:
    if not isinstance(actual, str):
        return False
    try:
        return ipaddress.ip_address(actual) in ipaddress.ip_network(network, strict=False)
    except ValueError:
        return False


def _wildcard(pattern: str, actual: str) -> bool:
    # Only '*' is special in EventBridge wildcards; escape fnmatch's other metacharacters.
    escaped = pattern.replace("[", "[[]").replace("?", "[?]")
    return fnmatch.fnmatchcase(actual, escaped)


class RecordFilter:
    """A mapping's FilterCriteria: up to five patterns, ORed.

    ``matches_kinesis`` and ``matches_dynamodb`` apply the source-specific projection AWS uses.
    An empty filter set matches everything.
    """

    def __init__(self, patterns: Sequence[str | Mapping[str, Any]]) -> None:
        if len(patterns) > MAX_FILTERS:
            raise PatternError(f"at most {MAX_FILTERS} filters are allowed, got {len(patterns)}")
        self.patterns = [EventPattern(p) for p in patterns]

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def matches(self, event: Any) -> bool:
        """True when any pattern matches ``event`` (or there are no patterns)."""
        return not self.patterns or any(p.matches(event) for p in self.patterns)

    def matches_kinesis(self, data_b64: str) -> bool:
        """Match a Kinesis record by its base64 ``data`` decoded as JSON.

        Only ``data`` is visible to Kinesis filters. A pattern that tests ``data`` never matches a
        record whose data is not JSON.
        """
        if not self.patterns:
            return True
        try:
            decoded: Any = json.loads(base64.b64decode(data_b64, validate=False))
        except (binascii.Error, ValueError):
            decoded = MISSING
        projection = {} if decoded is MISSING else {"data": decoded}
        for pattern in self.patterns:
            if decoded is MISSING and pattern.references("data"):
                continue
            if pattern.matches(projection):
                return True
        return False

    def matches_dynamodb(self, record: Mapping[str, Any]) -> bool:
        """Match a DynamoDB Streams record in its Lambda event shape."""
        return self.matches(record)
