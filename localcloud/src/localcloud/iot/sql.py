"""A subset of the AWS IoT SQL dialect: ``SELECT ... FROM 'topic/filter' [WHERE ...]``.

Supported: ``*``, named fields and nested paths (``a.b``, ``a[0]``), ``AS`` aliases, ``SELECT VALUE``,
literals (numbers, ``'strings'``, ``true``/``false``/``null``, ``[arrays]``, ``{'objects': 1}``),
arithmetic (``+ - * / %``), comparisons (``= <> != < <= > >=``), ``AND``/``OR``/``NOT``,
``IS [NOT] NULL`` / ``IS [NOT] UNDEFINED`` and the functions in :data:`FUNCTIONS`. Anything a field or
operator cannot produce is *Undefined*: it makes a ``WHERE`` false and is left out of a ``SELECT``,
as on AWS. The same expressions serve substitution templates (:mod:`localcloud.iot.templates`).
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from localcloud.iot.messages import UNDEFINED, IotMessage
from localcloud.iot.topics import InvalidTopicError, topic_level, validate_filter


class SqlError(ValueError):
    """A rule's SQL statement (or a substitution template's expression) could not be parsed."""


class EvalContext:
    """What an expression is evaluated against: the message and its parsed JSON document."""

    def __init__(self, message: IotMessage) -> None:
        self.message = message
        self.document: Any = message.document


# ----------------------------------------------------------------------------------------------------
# Tokens

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)
  | (?P<string>'(?:[^']|'')*'|"(?:[^"\\]|\\.)*")
  | (?P<quoted>`[^`]*`)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op><>|!=|<=|>=|[=<>+\-*/%(),.\[\]{}:])
    """,
    re.VERBOSE,
)

_KEYWORDS = {"select", "from", "where", "as", "and", "or", "not", "true", "false", "null", "is", "value"}


@dataclass(frozen=True)
class _Token:
    kind: str  # number, string, name, keyword, op, end
    text: str
    value: Any = None


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise SqlError(f"unexpected character {text[position]!r} at {position} in {text!r}")
        position = match.end()
        kind = match.lastgroup or ""
        raw = match.group()
        if kind == "space":
            continue
        if kind == "number":
            number: float | int = float(raw) if any(c in raw for c in ".eE") else int(raw)
            tokens.append(_Token("number", raw, number))
        elif kind == "string":
            if raw[0] == "'":
                tokens.append(_Token("string", raw, raw[1:-1].replace("''", "'")))
            else:
                tokens.append(_Token("string", raw, json.loads(raw)))
        elif kind == "quoted":
            tokens.append(_Token("name", raw, raw[1:-1]))
        elif kind == "name" and raw.lower() in _KEYWORDS:
            tokens.append(_Token("keyword", raw.lower(), raw))
        elif kind == "name":
            tokens.append(_Token("name", raw, raw))
        else:
            tokens.append(_Token("op", raw))
    tokens.append(_Token("end", ""))
    return tokens


# ----------------------------------------------------------------------------------------------------
# Expressions


class Expr:
    """An IoT SQL expression."""

    text: str = ""

    def evaluate(self, ctx: EvalContext) -> Any:
        """The expression's value for one message (possibly :data:`UNDEFINED`)."""
        raise NotImplementedError


@dataclass
class Literal(Expr):
    """A constant."""

    value: Any

    def evaluate(self, ctx: EvalContext) -> Any:
        return self.value


@dataclass
class Field(Expr):
    """A top-level field of the message's JSON document."""

    name: str

    def evaluate(self, ctx: EvalContext) -> Any:
        document = ctx.document
        if isinstance(document, dict):
            return document.get(self.name, UNDEFINED)
        return UNDEFINED


@dataclass
class Member(Expr):
    """``base.name``: a field of an object."""

    base: Expr
    name: str

    def evaluate(self, ctx: EvalContext) -> Any:
        value = self.base.evaluate(ctx)
        if isinstance(value, dict):
            return value.get(self.name, UNDEFINED)
        return UNDEFINED


@dataclass
class Index(Expr):
    """``base[i]``: an array element."""

    base: Expr
    index: Expr

    def evaluate(self, ctx: EvalContext) -> Any:
        return _get(self.base.evaluate(ctx), self.index.evaluate(ctx))


@dataclass
class ArrayLiteral(Expr):
    """``[a, b]``."""

    items: list[Expr]

    def evaluate(self, ctx: EvalContext) -> Any:
        values = [item.evaluate(ctx) for item in self.items]
        return [v for v in values if v is not UNDEFINED]


@dataclass
class ObjectLiteral(Expr):
    """``{'key': value}``."""

    items: list[tuple[str, Expr]]

    def evaluate(self, ctx: EvalContext) -> Any:
        result = {}
        for key, expr in self.items:
            value = expr.evaluate(ctx)
            if value is not UNDEFINED:
                result[key] = value
        return result


@dataclass
class Star(Expr):
    """``*`` as a function argument: the whole payload."""

    def evaluate(self, ctx: EvalContext) -> Any:
        return ctx.document if ctx.document is not UNDEFINED else ctx.message.payload


@dataclass
class Call(Expr):
    """A function call."""

    name: str
    args: list[Expr]
    function: Callable[[EvalContext, list[Any]], Any]

    def evaluate(self, ctx: EvalContext) -> Any:
        return self.function(ctx, [arg.evaluate(ctx) for arg in self.args])


@dataclass
class Unary(Expr):
    """``NOT x`` or ``-x``."""

    op: str
    operand: Expr

    def evaluate(self, ctx: EvalContext) -> Any:
        value = self.operand.evaluate(ctx)
        if self.op == "not":
            return not value if isinstance(value, bool) else UNDEFINED
        return -value if _is_number(value) else UNDEFINED


@dataclass
class IsCheck(Expr):
    """``x IS [NOT] NULL`` / ``x IS [NOT] UNDEFINED``."""

    operand: Expr
    what: str  # "null" or "undefined"
    negated: bool

    def evaluate(self, ctx: EvalContext) -> Any:
        value = self.operand.evaluate(ctx)
        result = value is None if self.what == "null" else value is UNDEFINED
        return result != self.negated


@dataclass
class Binary(Expr):
    """Arithmetic, comparison and boolean operators."""

    op: str
    left: Expr
    right: Expr

    def evaluate(self, ctx: EvalContext) -> Any:
        if self.op in ("and", "or"):
            return self._logical(ctx)
        left = self.left.evaluate(ctx)
        right = self.right.evaluate(ctx)
        if left is UNDEFINED or right is UNDEFINED:
            return UNDEFINED
        if self.op in ("=", "<>", "!="):
            if not _comparable(left, right):
                return UNDEFINED
            equal = left == right
            return equal if self.op == "=" else not equal
        if self.op in ("<", "<=", ">", ">="):
            if not (_is_number(left) and _is_number(right)) and not (
                isinstance(left, str) and isinstance(right, str)
            ):
                return UNDEFINED
            return _ORDERINGS[self.op](left, right)
        return _arithmetic(self.op, left, right)

    def _logical(self, ctx: EvalContext) -> Any:
        left = self.left.evaluate(ctx)
        if self.op == "and" and left is False:
            return False
        if self.op == "or" and left is True:
            return True
        right = self.right.evaluate(ctx)
        if not isinstance(left, bool) or not isinstance(right, bool):
            return UNDEFINED
        return (left and right) if self.op == "and" else (left or right)


_ORDERINGS: dict[str, Callable[[Any, Any], bool]] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _is_number(value: Any) -> bool:
    # bool is an int in Python but not a number in IoT SQL.
    return isinstance(value, int | float) and not isinstance(value, bool)


def _comparable(left: Any, right: Any) -> bool:
    if _is_number(left) and _is_number(right):
        return True
    return type(left) is type(right)


def _arithmetic(op: str, left: Any, right: Any) -> Any:
    if op == "+" and isinstance(left, str) and isinstance(right, str):
        return left + right
    if not (_is_number(left) and _is_number(right)):
        return UNDEFINED
    if op == "+":
        return left + right
    if op == "-":
        return left - right
    if op == "*":
        return left * right
    if right == 0:
        return UNDEFINED
    if op == "/":
        # Integer division of two integers stays an integer, as in IoT SQL.
        return left // right if isinstance(left, int) and isinstance(right, int) else left / right
    return math.fmod(left, right) if isinstance(left, float) or isinstance(right, float) else left % right


def _get(container: Any, key: Any) -> Any:
    if isinstance(container, list) and _is_number(key) and int(key) == key:
        position = int(key)
        return container[position] if -len(container) <= position < len(container) else UNDEFINED
    if isinstance(container, dict) and isinstance(key, str):
        return container.get(key, UNDEFINED)
    return UNDEFINED


# ----------------------------------------------------------------------------------------------------
# Functions


def _fn_topic(ctx: EvalContext, args: list[Any]) -> Any:
    if not args:
        return ctx.message.topic
    if not _is_number(args[0]):
        return UNDEFINED
    level = topic_level(ctx.message.topic, int(args[0]))
    return UNDEFINED if level is None else level


def _string_fn(transform: Callable[[str], Any]) -> Callable[[EvalContext, list[Any]], Any]:
    def call(ctx: EvalContext, args: list[Any]) -> Any:
        if len(args) != 1 or not isinstance(args[0], str):
            return UNDEFINED
        return transform(args[0])

    return call


def _number_fn(transform: Callable[[float], Any]) -> Callable[[EvalContext, list[Any]], Any]:
    def call(ctx: EvalContext, args: list[Any]) -> Any:
        if len(args) != 1 or not _is_number(args[0]):
            return UNDEFINED
        return transform(args[0])

    return call


def _fn_concat(ctx: EvalContext, args: list[Any]) -> Any:
    if any(a is UNDEFINED for a in args):
        return UNDEFINED
    if all(isinstance(a, list) for a in args):
        return [item for a in args for item in a]
    return "".join(to_text(a) for a in args)


def _fn_get(ctx: EvalContext, args: list[Any]) -> Any:
    return _get(args[0], args[1]) if len(args) == 2 else UNDEFINED


def _fn_coalesce(ctx: EvalContext, args: list[Any]) -> Any:
    return next((a for a in args if a is not UNDEFINED and a is not None), None)


FUNCTIONS: dict[str, Callable[[EvalContext, list[Any]], Any]] = {
    "topic": _fn_topic,
    "clientid": lambda ctx, args: ctx.message.client_id or "n/a",
    "principal": lambda ctx, args: ctx.message.principal or UNDEFINED,
    "timestamp": lambda ctx, args: ctx.message.timestamp_ms,
    "traceid": lambda ctx, args: ctx.message.trace_id,
    "newuuid": lambda ctx, args: str(uuid.uuid4()),
    "lower": _string_fn(str.lower),
    "upper": _string_fn(str.upper),
    "trim": _string_fn(str.strip),
    "length": lambda ctx, args: len(args[0]) if args and isinstance(args[0], str | list) else UNDEFINED,
    "concat": _fn_concat,
    "get": _fn_get,
    "coalesce": _fn_coalesce,
    "abs": _number_fn(abs),
    "floor": _number_fn(math.floor),
    "ceil": _number_fn(math.ceil),
    "round": _number_fn(lambda x: math.floor(x + 0.5)),
}


def to_text(value: Any) -> str:
    """A value as text, the way substitution templates and ``concat`` render it."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return json.dumps(value, separators=(",", ":"))


# ----------------------------------------------------------------------------------------------------
# Parser


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.position = 0

    @property
    def current(self) -> _Token:
        return self.tokens[self.position]

    def advance(self) -> _Token:
        token = self.tokens[self.position]
        self.position += 1
        return token

    def accept(self, kind: str, text: str | None = None) -> _Token | None:
        token = self.current
        if token.kind == kind and (text is None or token.text == text):
            self.position += 1
            return token
        return None

    def expect(self, kind: str, text: str | None = None) -> _Token:
        token = self.accept(kind, text)
        if token is None:
            wanted = (text.upper() if kind == "keyword" else text) if text else kind
            found = self.current.text or "the end"
            raise SqlError(f"expected {wanted!r} but found {found!r} in {self.text!r}")
        return token

    # expression := or
    def expression(self) -> Expr:
        return self.or_expr()

    def or_expr(self) -> Expr:
        left = self.and_expr()
        while self.accept("keyword", "or"):
            left = Binary("or", left, self.and_expr())
        return left

    def and_expr(self) -> Expr:
        left = self.not_expr()
        while self.accept("keyword", "and"):
            left = Binary("and", left, self.not_expr())
        return left

    def not_expr(self) -> Expr:
        if self.accept("keyword", "not"):
            return Unary("not", self.not_expr())
        return self.comparison()

    def comparison(self) -> Expr:
        left = self.additive()
        token = self.current
        if token.kind == "op" and token.text in ("=", "<>", "!=", "<", "<=", ">", ">="):
            self.advance()
            return Binary(token.text, left, self.additive())
        if self.accept("keyword", "is"):
            negated = self.accept("keyword", "not") is not None
            if self.accept("keyword", "null"):
                return IsCheck(left, "null", negated)
            name = self.expect("name")
            if name.text.lower() != "undefined":
                raise SqlError(f"expected NULL or UNDEFINED after IS in {self.text!r}")
            return IsCheck(left, "undefined", negated)
        return left

    def additive(self) -> Expr:
        left = self.multiplicative()
        while self.current.kind == "op" and self.current.text in ("+", "-"):
            op = self.advance().text
            left = Binary(op, left, self.multiplicative())
        return left

    def multiplicative(self) -> Expr:
        left = self.unary()
        while self.current.kind == "op" and self.current.text in ("*", "/", "%"):
            op = self.advance().text
            left = Binary(op, left, self.unary())
        return left

    def unary(self) -> Expr:
        if self.accept("op", "-"):
            return Unary("-", self.unary())
        return self.postfix()

    def postfix(self) -> Expr:
        expr = self.primary()
        while True:
            if self.accept("op", "."):
                name = self.current
                if name.kind not in ("name", "keyword"):
                    raise SqlError(f"expected a field name after '.' in {self.text!r}")
                self.advance()
                expr = Member(expr, str(name.value))
            elif self.accept("op", "["):
                index = self.expression()
                self.expect("op", "]")
                expr = Index(expr, index)
            else:
                return expr

    def primary(self) -> Expr:
        token = self.advance()
        if token.kind in ("number", "string"):
            return Literal(token.value)
        if token.kind == "keyword" and token.text in ("true", "false", "null"):
            return Literal({"true": True, "false": False, "null": None}[token.text])
        if token.kind == "op" and token.text == "(":
            inner = self.expression()
            self.expect("op", ")")
            return inner
        if token.kind == "op" and token.text == "[":
            items: list[Expr] = []
            if not self.accept("op", "]"):
                items.append(self.expression())
                while self.accept("op", ","):
                    items.append(self.expression())
                self.expect("op", "]")
            return ArrayLiteral(items)
        if token.kind == "op" and token.text == "{":
            pairs: list[tuple[str, Expr]] = []
            if not self.accept("op", "}"):
                pairs.append(self.pair())
                while self.accept("op", ","):
                    pairs.append(self.pair())
                self.expect("op", "}")
            return ObjectLiteral(pairs)
        if token.kind == "name" or (token.kind == "keyword" and token.text == "value"):
            name = str(token.value)
            if token.kind == "name" and token.text[0] != "`" and self.accept("op", "("):
                return self.call(name)
            return Field(name)
        raise SqlError(f"unexpected {token.text or 'end'!r} in {self.text!r}")

    def pair(self) -> tuple[str, Expr]:
        key = self.current
        if key.kind not in ("string", "name"):
            raise SqlError(f"expected an object key in {self.text!r}")
        self.advance()
        self.expect("op", ":")
        return str(key.value), self.expression()

    def call(self, name: str) -> Expr:
        function = FUNCTIONS.get(name.lower())
        if function is None:
            raise SqlError(f"function {name}() is not supported locally (in {self.text!r})")
        args: list[Expr] = []
        if not self.accept("op", ")"):
            args.append(self.argument())
            while self.accept("op", ","):
                args.append(self.argument())
            self.expect("op", ")")
        return Call(name.lower(), args, function)

    def argument(self) -> Expr:
        if self.accept("op", "*"):
            return Star()
        return self.expression()


def parse_expression(text: str) -> Expr:
    """Parse one IoT SQL expression (as used in a substitution template)."""
    parser = _Parser(text)
    expr = parser.expression()
    parser.expect("end")
    expr.text = text.strip()
    return expr


# ----------------------------------------------------------------------------------------------------
# Statements


@dataclass(frozen=True)
class SelectItem:
    """One entry of a SELECT list; ``expr`` None means ``*``."""

    expr: Expr | None
    alias: str | None = None


@dataclass(frozen=True)
class SelectResult:
    """What a rule's SELECT produced for one message: the action payload."""

    payload: bytes
    # The payload as a JSON value when it is JSON (Lambda events, DynamoDB items), else UNDEFINED.
    value: Any


@dataclass(frozen=True)
class Query:
    """A parsed rule statement."""

    sql: str
    topic_filter: str
    items: tuple[SelectItem, ...]
    where: Expr | None
    select_value: bool = False

    def matches(self, ctx: EvalContext) -> bool:
        """True when the WHERE clause (if any) is true for the message."""
        return self.where is None or self.where.evaluate(ctx) is True

    def select(self, ctx: EvalContext) -> SelectResult:
        """The SELECT clause applied to the message."""
        message = ctx.message
        if self.select_value:
            expr = self.items[0].expr
            value = expr.evaluate(ctx) if expr is not None else UNDEFINED
            if value is UNDEFINED:
                return SelectResult(b"", UNDEFINED)
            if isinstance(value, bytes):
                return SelectResult(value, UNDEFINED)
            return SelectResult(_dump(value), value)
        if len(self.items) == 1 and self.items[0].expr is None:
            # SELECT * passes the payload through byte for byte (binary payloads too).
            return SelectResult(message.payload, ctx.document)
        result: dict[str, Any] = {}
        for item in self.items:
            if item.expr is None:
                if isinstance(ctx.document, dict):
                    result.update(ctx.document)
                continue
            value = item.expr.evaluate(ctx)
            if value is UNDEFINED:
                continue
            if isinstance(value, bytes):
                value = value.decode("utf-8", errors="replace")
            result[item.alias or _default_name(item.expr)] = value
        return SelectResult(_dump(result), result)


def _dump(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _default_name(expr: Expr) -> str:
    if isinstance(expr, Field | Member):
        return expr.name
    return expr.text or "value"


def parse_sql(sql: str) -> Query:
    """Parse a rule's SQL statement; raise :class:`SqlError` when it is not supported or invalid."""
    parser = _Parser(sql)
    parser.expect("keyword", "select")
    select_value = _starts_select_value(parser)
    if select_value:
        parser.advance()
    items = _select_items(parser, select_value)
    parser.expect("keyword", "from")
    source = parser.expect("string")
    topic_filter = str(source.value)
    try:
        validate_filter(topic_filter)
    except InvalidTopicError as exc:
        raise SqlError(f"invalid topic filter in {sql!r}: {exc}") from exc
    where = None
    if parser.accept("keyword", "where"):
        where = parser.expression()
    parser.expect("end")
    return Query(
        sql=sql, topic_filter=topic_filter, items=tuple(items), where=where, select_value=select_value
    )


def _starts_select_value(parser: _Parser) -> bool:
    # "SELECT VALUE expr" versus a field that happens to be called "value" ("SELECT value, x").
    token = parser.current
    if token.kind != "keyword" or token.text != "value":
        return False
    following = parser.tokens[parser.position + 1]
    if following.kind == "op" and following.text in (",", ".", "["):
        return False
    return not (following.kind == "keyword" and following.text in ("from", "as"))


def _select_items(parser: _Parser, select_value: bool) -> Sequence[SelectItem]:
    if select_value:
        return [SelectItem(parser.expression())]
    items = [_select_item(parser)]
    while parser.accept("op", ","):
        items.append(_select_item(parser))
    return items


def _select_item(parser: _Parser) -> SelectItem:
    if parser.accept("op", "*"):
        return SelectItem(None)
    start = parser.position
    expr = parser.expression()
    expr.text = " ".join(t.text for t in parser.tokens[start : parser.position])
    alias = None
    if parser.accept("keyword", "as"):
        alias_token = parser.current
        if alias_token.kind not in ("name", "string", "keyword"):
            raise SqlError(f"expected a name after AS in {parser.text!r}")
        parser.advance()
        alias = str(alias_token.value)
    return SelectItem(expr, alias)
