"""Substitution templates in rule actions: ``${expression}`` replaced by its value.

The expression is any IoT SQL expression (``${topic()}``, ``${topic(2)}``, ``${timestamp()}``,
``${newuuid()}``, ``${clientid()}``, ``${raceId}``, ``${rider.id}``, ``${concat(a, '-', b)}``),
evaluated against the *incoming* message, never the SELECT output, as on AWS.
"""

from __future__ import annotations

from dataclasses import dataclass

from localcloud.iot.messages import UNDEFINED
from localcloud.iot.sql import EvalContext, Expr, SqlError, parse_expression, to_text


@dataclass(frozen=True)
class SubstitutionTemplate:
    """A parsed template: literal text and expressions, in order."""

    source: str
    parts: tuple[str | Expr, ...]

    @classmethod
    def parse(cls, source: str) -> SubstitutionTemplate:
        """Parse ``source``; raise :class:`~localcloud.iot.sql.SqlError` on a bad expression."""
        parts: list[str | Expr] = []
        position = 0
        while True:
            start = source.find("${", position)
            if start < 0:
                break
            end = _closing_brace(source, start + 2)
            if start > position:
                parts.append(source[position:start])
            parts.append(parse_expression(source[start + 2 : end]))
            position = end + 1
        if position < len(source):
            parts.append(source[position:])
        return cls(source, tuple(parts))

    @property
    def is_constant(self) -> bool:
        """True when the template has no ``${...}``."""
        return all(isinstance(part, str) for part in self.parts)

    def render(self, ctx: EvalContext) -> str:
        """The text for one message; an Undefined expression renders as the empty string."""
        pieces = []
        for part in self.parts:
            if isinstance(part, str):
                pieces.append(part)
                continue
            value = part.evaluate(ctx)
            pieces.append("" if value is UNDEFINED else to_text(value))
        return "".join(pieces)


def _closing_brace(source: str, position: int) -> int:
    # Braces may nest (object literals) and appear inside quoted strings.
    depth = 0
    quote: str | None = None
    for index in range(position, len(source)):
        char = source[index]
        if quote:
            if char == quote:
                quote = None
        elif char in ("'", '"'):
            quote = char
        elif char == "{":
            depth += 1
        elif char == "}":
            if depth == 0:
                return index
            depth -= 1
    raise SqlError(f"unclosed '${{' in substitution template {source!r}")
