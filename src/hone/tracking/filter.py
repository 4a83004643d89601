"""A small filter language for runs, parsed into SQLAlchemy expressions (never SQL text).

    metrics.acc > 0.9 and params.lr = '0.01'
    (tags.team = "vision" or tags.team = "nlp") and status != 'failed'
    metrics.`val acc` >= 0.5 and params.optimizer in ('adam', 'sgd')
    name like 'resnet%' and metrics.loss is not null

Fields: ``metrics.KEY`` (the value at the latest step), ``params.KEY``, ``tags.KEY``, or a run
attribute: id, name, status, experiment, start_time, end_time, parent_run_id, git_commit,
host, user. Keys with other characters go in backticks. Params and tags are text and compare
with =, !=, like, ilike, in; metrics and times compare as numbers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Table,
    and_,
    exists,
    not_,
    or_,
    select,
)

from hone.errors import FilterError
from hone.store.schema import experiments, latest_metrics, params, runs, tags
from hone.tracking.entities import RunStatus

__all__ = ["ATTRIBUTES", "parse_filter", "parse_order_by"]

ATTRIBUTES: dict[str, Any] = {
    "id": runs.c.id,
    "run_id": runs.c.id,
    "name": runs.c.name,
    "status": runs.c.status,
    "experiment": experiments.c.name,
    "start_time": runs.c.start_time,
    "end_time": runs.c.end_time,
    "parent_run_id": runs.c.parent_run_id,
    "git_commit": runs.c.git_commit,
    "host": runs.c.host,
    "user": runs.c.user,
}
_NUMERIC_ATTRIBUTES = {"start_time", "end_time"}
_PREFIXES = {
    "metrics": "metrics",
    "metric": "metrics",
    "params": "params",
    "param": "params",
    "tags": "tags",
    "tag": "tags",
    "attributes": "attr",
    "attribute": "attr",
    "attr": "attr",
    "run": "attr",
}
_TOKEN = re.compile(
    r"""\s*(?:
      (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![\w.]))
    | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
    | (?P<op><=|>=|!=|<>|==|=|<|>)
    | (?P<punct>[(),])
    | (?P<quoted>`[^`]+`)
    | (?P<word>[A-Za-z_][\w\-./:]*)
    )""",
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "not", "in", "like", "ilike", "is", "null"}


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    pos: int


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            start = len(text) - len(text[pos:].lstrip())
            raise FilterError(
                f"unexpected {text[start : start + 12]!r} at position {start} in filter {text!r}"
            )
        group = match.lastgroup or ""
        kind, value = group, match.group(group)
        if kind == "word" and value.lower() in _KEYWORDS:
            kind, value = "kw", value.lower()
        tokens.append(_Token(kind, value, match.start(group)))
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0

    def error(self, message: str) -> FilterError:
        tok = self.peek()
        where = f"at position {tok.pos}" if tok else "at the end"
        return FilterError(f"{message} {where} of filter {self.text!r}")

    def peek(self) -> _Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> _Token:
        tok = self.peek()
        if tok is None:
            raise self.error("the filter ends too early")
        self.i += 1
        return tok

    def accept_kw(self, word: str) -> bool:
        tok = self.peek()
        if tok is not None and tok.kind == "kw" and tok.text == word:
            self.i += 1
            return True
        return False

    def expect(self, kind: str, text: str | None = None) -> _Token:
        tok = self.peek()
        if tok is None or tok.kind != kind or (text is not None and tok.text != text):
            raise self.error(f"expected {text or kind}")
        self.i += 1
        return tok

    def parse(self) -> ColumnElement[bool]:
        expr = self.or_expr()
        if self.peek() is not None:
            raise self.error("expected 'and', 'or' or the end")
        return expr

    def or_expr(self) -> ColumnElement[bool]:
        parts = [self.and_expr()]
        while self.accept_kw("or"):
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else or_(*parts)

    def and_expr(self) -> ColumnElement[bool]:
        parts = [self.not_expr()]
        while self.accept_kw("and"):
            parts.append(self.not_expr())
        return parts[0] if len(parts) == 1 else and_(*parts)

    def not_expr(self) -> ColumnElement[bool]:
        if self.accept_kw("not"):
            return not_(self.not_expr())
        tok = self.peek()
        if tok is not None and tok.kind == "punct" and tok.text == "(":
            self.i += 1
            expr = self.or_expr()
            self.expect("punct", ")")
            return expr
        return self.comparison()

    def field(self) -> tuple[str, str]:
        tok = self.take()
        if tok.kind != "word":
            self.i -= 1
            raise self.error("expected a field such as metrics.acc, params.lr or status")
        head, dot, rest = tok.text.partition(".")
        scope = _PREFIXES.get(head.lower()) if dot else None
        if scope is None:
            if tok.text.lower() not in ATTRIBUTES:
                self.i -= 1
                raise self.error(
                    f"unknown field {tok.text!r} (use metrics.KEY, params.KEY, tags.KEY or one "
                    f"of {', '.join(sorted(set(ATTRIBUTES)))})"
                )
            return "attr", tok.text.lower()
        if not rest:
            nxt = self.peek()
            if nxt is None or nxt.kind != "quoted":
                raise self.error(f"expected a key after {head}.")
            self.i += 1
            rest = nxt.text[1:-1]
        if scope == "attr":
            if rest.lower() not in ATTRIBUTES:
                raise self.error(f"unknown run attribute {rest!r}")
            rest = rest.lower()
        return scope, rest

    def literal(self) -> Any:
        tok = self.take()
        if tok.kind == "number":
            return _Number(tok.text)
        if tok.kind == "string":
            return re.sub(r"\\(.)", r"\1", tok.text[1:-1])
        self.i -= 1
        raise self.error("expected a number or a quoted string")

    def comparison(self) -> ColumnElement[bool]:
        scope, key = self.field()
        if self.accept_kw("is"):
            negate = self.accept_kw("not")
            self.expect("kw", "null")
            return _null_check(scope, key, negate)
        negate = self.accept_kw("not")
        if self.accept_kw("in"):
            self.expect("punct", "(")
            values = [self.literal()]
            while self.peek() is not None and self.peek().text == ",":  # type: ignore[union-attr]
                self.i += 1
                values.append(self.literal())
            self.expect("punct", ")")
            op = "not in" if negate else "in"
            return _compare(scope, key, op, values, self)
        tok = self.take()
        if tok.kind == "kw" and tok.text in ("like", "ilike"):
            op = ("not " if negate else "") + tok.text
        elif tok.kind == "op" and not negate:
            op = {"==": "=", "<>": "!="}.get(tok.text, tok.text)
        else:
            self.i -= 1
            raise self.error("expected a comparison (=, !=, <, <=, >, >=, like, ilike, in, is)")
        return _compare(scope, key, op, self.literal(), self)


class _Number(str):
    """A numeric literal, kept as typed so ``params.lr = 0.01`` matches the text '0.01'."""


_OPS: dict[str, Callable[[Any, Any], ColumnElement[bool]]] = {
    "=": lambda c, v: c == v,
    "!=": lambda c, v: c != v,
    "<": lambda c, v: c < v,
    "<=": lambda c, v: c <= v,
    ">": lambda c, v: c > v,
    ">=": lambda c, v: c >= v,
    "like": lambda c, v: c.like(v),
    "not like": lambda c, v: c.not_like(v),
    "ilike": lambda c, v: c.ilike(v),
    "not ilike": lambda c, v: c.not_ilike(v),
    "in": lambda c, v: c.in_(v),
    "not in": lambda c, v: c.not_in(v),
}
_TEXT_OPS = {"=", "!=", "like", "not like", "ilike", "not ilike", "in", "not in"}
_NUMBER_OPS = {"=", "!=", "<", "<=", ">", ">=", "in", "not in"}


def _compare(scope: str, key: str, op: str, value: Any, parser: _Parser) -> ColumnElement[bool]:
    values = value if isinstance(value, list) else [value]
    numeric = scope == "metrics" or (scope == "attr" and key in _NUMERIC_ATTRIBUTES)
    if numeric:
        if op not in _NUMBER_OPS:
            raise parser.error(f"{scope}.{key} is a number: use =, !=, <, <=, >, >= or in")
        if not all(isinstance(v, _Number) for v in values):
            raise parser.error(
                f"{scope}.{key} is a number: compare it with a number, not a quoted string"
            )
        converted: Any = [float(v) for v in values]
    else:
        if op not in _TEXT_OPS:
            raise parser.error(
                f"{'params and tags' if scope != 'attr' else key} are text: use =, !=, like, "
                "ilike or in (log a metric to compare numbers)"
            )
        converted = [str(v) for v in values]
        if scope == "attr" and key == "status":
            known = {s.value for s in RunStatus}
            for v in converted:
                if op in ("=", "!=", "in", "not in") and v not in known:
                    raise parser.error(f"status {v!r} is not one of {', '.join(sorted(known))}")
    operand = converted if isinstance(value, list) else converted[0]
    make = _OPS[op]
    if scope == "attr":
        return make(ATTRIBUTES[key], operand)
    table, column = _keyed(scope)
    matches = make(table.c[column], operand)
    if scope == "params":
        # Params have a (key, value) index: a non-correlated IN finds the matching runs
        # once. Metric and tag values have none (random floats would scatter every run's
        # writes across it), so those probe each candidate run by primary key instead.
        return runs.c.id.in_(select(table.c.run_id).where(table.c.key == key, matches))
    return exists(select(1).where(table.c.run_id == runs.c.id, table.c.key == key, matches))


def _null_check(scope: str, key: str, negate: bool) -> ColumnElement[bool]:
    if scope == "attr":
        column: ColumnElement[Any] = ATTRIBUTES[key]
        return column.is_not(None) if negate else column.is_(None)
    table, _ = _keyed(scope)
    holders = select(table.c.run_id).where(table.c.key == key)
    return runs.c.id.in_(holders) if negate else runs.c.id.not_in(holders)


def _keyed(scope: str) -> tuple[Table, str]:
    return {
        "metrics": (latest_metrics, "value"),
        "params": (params, "value"),
        "tags": (tags, "value"),
    }[scope]


def parse_filter(text: str | None) -> ColumnElement[bool] | None:
    """The filter as a boolean SQLAlchemy expression over ``runs``/``experiments``."""
    if text is None or not text.strip():
        return None
    return _Parser(text).parse()


def parse_order_by(clauses: list[str] | None) -> list[ColumnElement[Any]]:
    """``["metrics.acc desc", "start_time"]`` → ORDER BY expressions (missing values last)."""
    order: list[ColumnElement[Any]] = []
    for clause in clauses or []:
        parts = clause.strip().rsplit(None, 1)
        direction = "asc"
        if len(parts) == 2 and parts[1].lower() in ("asc", "desc"):
            clause, direction = parts[0], parts[1].lower()
        parser = _Parser(clause)
        scope, key = parser.field()
        if parser.peek() is not None:
            raise FilterError(
                f"order_by {clause!r}: expected FIELD [asc|desc], e.g. 'metrics.acc desc'"
            )
        if scope == "attr":
            column: Any = ATTRIBUTES[key]
        else:
            table, name = _keyed(scope)
            column = (
                select(table.c[name])
                .where(table.c.run_id == runs.c.id, table.c.key == key)
                .scalar_subquery()
            )
        expr = column.desc() if direction == "desc" else column.asc()
        order.append(expr.nulls_last())
    return order
