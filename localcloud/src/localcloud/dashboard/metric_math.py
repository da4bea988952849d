"""The arithmetic subset of CloudWatch metric math, evaluated on series the server already fetched.

moto's GetMetricData does not evaluate metric math, and dashboards use it for the plainest things
(``m1 / PERIOD(m1)`` turns a per-period Sum into a per-second rate). So the page server evaluates
this subset itself, the same way against localcloud and AWS: ``+ - * / ^``, numbers, query ids,
``PERIOD(m)``, ``FILL(m, value)``, ``ABS(m)`` and ``SUM/AVG/MIN/MAX([m1, m2, ...])``. Anything
else raises :class:`UnsupportedExpressionError` and is left to CloudWatch.

A series is ``{epoch second: value}``; arithmetic between two series keeps the timestamps both
have (as CloudWatch does), and a division by zero leaves the point out.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping

Series = dict[int, float]
Value = float | Series

_OPERATORS: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}
_AGGREGATES: dict[str, Callable[[list[float]], float]] = {
    "SUM": sum,
    "AVG": lambda values: sum(values) / len(values),
    "MIN": min,
    "MAX": max,
}


class UnsupportedExpressionError(ValueError):
    """The expression uses metric math this evaluator does not implement."""


def referenced_ids(expression: str) -> set[str]:
    """Query ids an expression reads (lower-case names; functions are upper case)."""
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError:
        return set()
    functions = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    return {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and id(node) not in functions}


def evaluate(expression: str, series: Mapping[str, Series], periods: Mapping[str, int]) -> Series:
    """The series ``expression`` computes from ``series`` (by query id) with their ``periods``."""
    try:
        # Metric math's ^ is a power and binds like one: Python's ** has the same precedence.
        tree = ast.parse(expression.strip().replace("^", "**"), mode="eval")
    except SyntaxError as exc:
        raise UnsupportedExpressionError(f"cannot parse {expression!r}") from exc
    timeline = sorted({t for values in series.values() for t in values})
    result = _Evaluator(series, periods, timeline).visit(tree.body)
    if isinstance(result, dict):
        return result
    # A constant expression draws a flat line over the widget's time range.
    return dict.fromkeys(timeline, float(result))


class _Evaluator:
    def __init__(self, series: Mapping[str, Series], periods: Mapping[str, int], timeline: list[int]) -> None:
        self.series = series
        self.periods = periods
        self.timeline = timeline

    def visit(self, node: ast.AST) -> Value:
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return float(node.value)
        if isinstance(node, ast.Name):
            if node.id not in self.series:
                raise UnsupportedExpressionError(f"unknown query id {node.id!r}")
            return self.series[node.id]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            sign = -1.0 if isinstance(node.op, ast.USub) else 1.0
            return _combine(sign, self.visit(node.operand), operator.mul)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            return _combine(self.visit(node.left), self.visit(node.right), _OPERATORS[type(node.op)])
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            return self.call(node.func.id, node.args)
        raise UnsupportedExpressionError(f"unsupported metric math: {ast.unparse(node)}")

    def call(self, name: str, args: list[ast.expr]) -> Value:
        if name == "PERIOD" and len(args) == 1 and isinstance(args[0], ast.Name):
            if args[0].id not in self.periods:
                raise UnsupportedExpressionError(f"PERIOD of unknown id {args[0].id!r}")
            return float(self.periods[args[0].id])
        if name == "ABS" and len(args) == 1:
            return _combine(self.visit(args[0]), 0.0, lambda a, _: abs(a))
        if name == "FILL" and len(args) == 2:
            values, filler = self.visit(args[0]), self.visit(args[1])
            if not isinstance(values, dict) or isinstance(filler, dict):
                raise UnsupportedExpressionError("FILL(series, number) only")
            return {t: values.get(t, filler) for t in self.timeline}
        if name in _AGGREGATES and len(args) == 1 and isinstance(args[0], ast.List):
            members = [self.visit(element) for element in args[0].elts]
            merged: Series = {}
            for t in self.timeline:
                present = [
                    m[t] if isinstance(m, dict) else m for m in members if not isinstance(m, dict) or t in m
                ]
                if present:
                    merged[t] = _AGGREGATES[name](present)
            return merged
        raise UnsupportedExpressionError(f"unsupported metric math function {name}")


def _combine(left: Value, right: Value, op: Callable[[float, float], float]) -> Value:
    def apply(a: float, b: float) -> float | None:
        try:
            return op(a, b)
        except (ZeroDivisionError, OverflowError):
            return None

    if isinstance(left, dict) and isinstance(right, dict):
        pairs = ((t, apply(left[t], right[t])) for t in left.keys() & right.keys())
    elif isinstance(left, dict):
        pairs = ((t, apply(v, float(right))) for t, v in left.items())  # type: ignore[arg-type]
    elif isinstance(right, dict):
        pairs = ((t, apply(left, v)) for t, v in right.items())
    else:
        value = apply(left, right)
        if value is None:
            raise UnsupportedExpressionError("division by zero in a constant expression")
        return value
    return {t: v for t, v in sorted(pairs) if v is not None}


def as_series(values: Mapping[int, float]) -> Series:
    """A plain ``{epoch second: value}`` copy."""
    return {int(t): float(v) for t, v in values.items()}
