r"""The filter language for runs, parsed into SQLAlchemy expressions (never SQL text).

    metrics.acc > 0.9 and params.lr = '0.01'
    (tags.team = "vision" or tags.team = "nlp") and status != 'failed'
    metrics.`val acc` >= 0.5 and params.optimizer in ('adam', 'sgd')
    name like 'resnet%' and metrics.loss is not null

Fields: ``metrics.KEY`` (the value at the latest step), ``params.KEY``, ``tags.KEY``,
``datasets.name|digest|context`` (a run's inputs: dataset, version id, split), or a run
attribute: id, name, status, experiment, start_time, end_time, parent_run_id, git_commit,
host, user. A key with other characters goes in backticks or quotes (``metrics."val acc"``).
Prefixes and attribute names ignore case; MLflow's spellings work too: ``metric.``,
``param.``, ``tag.``, ``dataset.``, ``attributes.``/``attribute.``/``attr.``/``run.`` before
an attribute, ``run_id``, ``run_name`` (or ``Run name``), ``created`` (start_time),
``user_id``, and statuses in capitals (``status = 'FINISHED'``). Times are seconds since the
epoch; a time past the year 5000 is refused as milliseconds (MLflow's unit).

Metrics and times compare as numbers (=, !=, <, <=, >, >=, in); everything else is text
(=, !=, like, ilike, in), and a number compared with text matches it as typed
(``params.lr = 0.01`` matches '0.01', not '1e-2'). ``and`` binds tighter than ``or``. A
clause on a value a run lacks (a missing key, a NaN metric, the end_time of a running run)
is false, and ``not`` makes it true: ``not`` is the complement, while ``!=`` and ``not in``
need the value. ``is null`` means missing; a NaN metric is not null.

Strings are quoted with ' or ". Inside, a backslash escapes a quote or a backslash (\', \",
\\); before any other character it stays as written ('C:\temp' is C:\temp).

``like`` is case-sensitive on every backend; ``ilike`` ignores the case of ASCII letters
only (A-Z: every backend agrees, whatever its locale). In a pattern ``%`` matches any run
of characters, ``_`` exactly one, and a backslash makes the next character literal:
'run\_%' matches names starting with "run_", '100\%' is "100%", and a literal backslash is
\\ in the pattern, so '\\\\' in a quoted string.

Bounds, checked before any SQL is built: ``MAX_FILTER_CHARS`` characters, ``MAX_DEPTH``
nested parentheses, ``MAX_CLAUSES`` comparisons, ``MAX_VALUES`` values (each ``in`` item
counts), ``MAX_PATTERN_CHARS`` characters in a like pattern, ``MAX_ORDER_BY`` order-by
clauses; and no NUL or lone surrogate, which no store can hold. Breaking any is a
``FilterError`` that names the bound or the position.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Table,
    and_,
    exists,
    func,
    literal_column,
    not_,
    or_,
    select,
)

from hone.errors import FilterError
from hone.store.schema import (
    PARAM_INDEX_PREFIX,
    experiments,
    latest_metrics,
    params,
    run_inputs,
    runs,
    tags,
)
from hone.tracking.entities import RunStatus
from hone.tracking.filter_lexer import MAX_FILTER_CHARS, Token, checked_text, excerpt, tokenize
from hone.tracking.filter_sql import MAX_PATTERN_CHARS, OPS, CodePointOrder, Exact, Pattern

__all__ = [
    "ATTRIBUTES",
    "MAX_CLAUSES",
    "MAX_DEPTH",
    "MAX_FILTER_CHARS",
    "MAX_ORDER_BY",
    "MAX_PATTERN_CHARS",
    "MAX_VALUES",
    "parse_filter",
    "parse_order_by",
]

MAX_DEPTH = 50  # Python and SQL both recurse per level; real filters nest a few
MAX_CLAUSES = 500  # SQLite's expression tree is at most 1,000 deep; an or-chain is that deep
MAX_VALUES = 5_000
MAX_ORDER_BY = 20

ATTRIBUTES: dict[str, Any] = {
    "id": runs.c.id,
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
_ALIASES = {
    "run_id": "id",
    "run_name": "name",
    "run name": "name",
    "created": "start_time",
    "user_id": "user",
}
_NOT_IN_HONE = {
    "artifact_uri": "a run's artifacts are listed by `hone runs show`, not filtered",
    "lifecycle_stage": "hone does not soft-delete runs: every run is active",
    "experiment_id": "filter on the name: experiment = 'NAME'",
}
_NUMERIC_ATTRIBUTES = {"start_time", "end_time"}
_DATASET_FIELDS = {"name": "dataset", "digest": "version_id", "context": "split"}
_PREFIXES = {
    **dict.fromkeys(("metrics", "metric"), "metrics"),
    **dict.fromkeys(("params", "param"), "params"),
    **dict.fromkeys(("tags", "tag"), "tags"),
    **dict.fromkeys(("datasets", "dataset"), "datasets"),
    **dict.fromkeys(("attributes", "attribute", "attr", "run"), "attr"),
}
_LATEST_PLAUSIBLE_TIME = 1e11  # seconds: the year 5138; larger values are milliseconds
_STRING_ESCAPE = re.compile(r"""\\([\\'"])""")


class _Parser:
    """Recursive descent; only parentheses recurse, and no deeper than ``MAX_DEPTH``."""

    def __init__(self, text: str, what: str = "filter") -> None:
        self.text = text
        self.what = what  # how errors name the text: "filter", "order_by clause"
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = self.clauses = self.values = 0

    def error(self, message: str) -> FilterError:
        tok = self.peek()
        where = f"at position {tok.pos}" if tok else "at the end"
        return FilterError(
            f"{message} {where} of {self.what} {excerpt(self.text, tok.pos if tok else None)}",
            position=tok.pos if tok else len(self.text.rstrip()),
        )

    def peek(self) -> Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> Token:
        tok = self.peek()
        if tok is None:
            raise self.error("the filter ends too early")
        self.i += 1
        return tok

    def accept(self, kind: str, text: str) -> bool:
        tok = self.peek()
        if tok is not None and tok.kind == kind and tok.text == text:
            self.i += 1
            return True
        return False

    def expect(self, kind: str, text: str) -> None:
        if not self.accept(kind, text):
            raise self.error(f"expected {text}")

    def parse(self) -> ColumnElement[bool]:
        expr = self.or_expr()
        if self.peek() is not None:
            raise self.error("expected 'and', 'or' or the end")
        return expr

    def or_expr(self) -> ColumnElement[bool]:
        parts = [self.and_expr()]
        while self.accept("kw", "or"):
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else or_(*parts)

    def and_expr(self) -> ColumnElement[bool]:
        parts = [self.not_expr()]
        while self.accept("kw", "and"):
            parts.append(self.not_expr())
        return parts[0] if len(parts) == 1 else and_(*parts)

    def not_expr(self) -> ColumnElement[bool]:
        negations = 0
        while self.accept("kw", "not"):  # a loop: a chain of nots costs no stack
            negations += 1
        if self.accept("punct", "("):
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise self.error(f"parentheses nest deeper than {MAX_DEPTH} levels")
            expr = self.or_expr()
            self.expect("punct", ")")
            self.depth -= 1
        else:
            expr = self.comparison()
        return not_(expr) if negations % 2 else expr

    def field(self) -> tuple[str, str]:
        tok = self.take()
        if tok.kind != "word":
            self.i -= 1
            raise self.error("expected a field such as metrics.acc, params.lr or status")
        head, dot, rest = tok.text.partition(".")
        scope = _PREFIXES.get(head.lower()) if dot else None
        if scope is None:
            return "attr", self.attribute(tok.text)
        if not rest:
            nxt = self.peek()
            if nxt is None or nxt.kind not in ("quoted", "string"):
                raise self.error(f"expected a key after {head}.")
            self.i += 1
            rest = _unquote(nxt.text)
        if scope == "attr":
            return scope, self.attribute(rest)
        if scope == "datasets":
            if rest.lower() not in _DATASET_FIELDS:
                self.i -= 1
                raise self.error(f"unknown dataset field {rest!r} (use name, digest or context)")
            return scope, rest.lower()
        return scope, rest

    def attribute(self, name: str) -> str:
        lowered = name.lower()
        lowered = _ALIASES.get(lowered, lowered)
        if lowered in ATTRIBUTES:
            return lowered
        hint = _NOT_IN_HONE.get(lowered)
        self.i -= 1  # the error points at the field, just taken
        raise self.error(
            f"hone runs have no {name!r}: {hint}"
            if hint
            else f"unknown field {name!r} (use metrics.KEY, params.KEY, tags.KEY, "
            f"datasets.name or one of {', '.join(sorted(ATTRIBUTES))})"
        )

    def literal(self) -> str:
        tok = self.take()
        self.values += 1
        if self.values > MAX_VALUES:
            raise self.error(f"the filter has more than {MAX_VALUES:,} values")
        if tok.kind == "number":
            return _Number(tok.text)
        if tok.kind == "string":
            return _unquote(tok.text)
        self.i -= 1
        raise self.error("expected a number or a quoted string")

    def comparison(self) -> ColumnElement[bool]:
        self.clauses += 1
        if self.clauses > MAX_CLAUSES:
            raise self.error(f"the filter has more than {MAX_CLAUSES} comparisons")
        scope, key = self.field()
        if self.accept("kw", "is"):
            negate = self.accept("kw", "not")
            self.expect("kw", "null")
            return _null_check(scope, key, negate)
        negate = self.accept("kw", "not")
        if self.accept("kw", "in"):
            self.expect("punct", "(")
            values = [self.literal()]
            while self.accept("punct", ","):
                values.append(self.literal())
            self.expect("punct", ")")
            return _compare(scope, key, "not in" if negate else "in", values, self)
        tok = self.take()
        if tok.kind == "kw" and tok.text in ("like", "ilike"):
            op = ("not " if negate else "") + tok.text
        elif tok.kind == "op" and not negate:
            op = {"==": "=", "<>": "!="}.get(tok.text, tok.text)
        else:
            self.i -= 1
            raise self.error("expected a comparison (=, !=, <, <=, >, >=, like, ilike, in, is)")
        return _compare(scope, key, op, [self.literal()], self)


class _Number(str):
    """A numeric literal, kept as typed so ``params.lr = 0.01`` matches the text '0.01'."""


def _unquote(token: str) -> str:
    body = token[1:-1]
    return body if token[0] == "`" else _STRING_ESCAPE.sub(r"\1", body)


_TEXT_OPS = {"=", "!=", "like", "not like", "ilike", "not ilike", "in", "not in"}
_NUMBER_OPS = {"=", "!=", "<", "<=", ">", ">=", "in", "not in"}
_NULLABLE = {"end_time", "parent_run_id", "git_commit", "host", "user"}


def _compare(
    scope: str, key: str, op: str, values: list[str], parser: _Parser
) -> ColumnElement[bool]:
    operands: list[Any]
    if scope == "metrics" or (scope == "attr" and key in _NUMERIC_ATTRIBUTES):
        operands = _numbers(scope, key, op, values, parser)
    else:
        if op not in _TEXT_OPS:
            raise parser.error(
                f"{key if scope == 'attr' else scope + ' values'} are text: use =, !=, like, "
                "ilike or in (log a metric to compare numbers)"
            )
        operands = list(values)
        if "like" in op:
            operands = [Pattern.parse(values[0], fold="ilike" in op, error=parser.error)]
        elif scope == "attr" and key == "status":
            operands = [_status(v, parser) for v in values]
    make = OPS[op]
    if scope == "attr":
        column = ATTRIBUTES[key]
        matches = make(column, operands)
        # A missing value fails every clause, and `not` must then hold: SQL's NULL would not.
        return and_(column.is_not(None), matches) if key in _NULLABLE else matches
    if scope == "datasets":
        matches = make(run_inputs.c[_DATASET_FIELDS[key]], operands)
        return runs.c.id.in_(select(run_inputs.c.run_id).where(matches))
    table, column_name = _keyed(scope)
    matches = make(table.c[column_name], operands)
    if scope == "params":
        # Params have a (key, value prefix) index: a non-correlated IN finds the matching
        # runs once; = and in also compare the prefix, so that the index narrows them.
        # Metric and tag values have none (random floats would scatter every run's writes
        # across it), so those probe each candidate run by primary key instead.
        if op in ("=", "in"):
            # Rendered as literals: an index on an expression serves only that very expression.
            prefix = func.substr(
                params.c.value, literal_column("1"), literal_column(str(PARAM_INDEX_PREFIX))
            )
            cut = [str(v)[:PARAM_INDEX_PREFIX] for v in operands]
            matches = and_(
                prefix == cut[0] if op == "=" else prefix.in_(cut),
                OPS[op](Exact(params.c.value), operands),
            )
        return runs.c.id.in_(select(table.c.run_id).where(table.c.key == key, matches))
    return exists(select(1).where(table.c.run_id == runs.c.id, table.c.key == key, matches))


def _numbers(scope: str, key: str, op: str, values: list[str], parser: _Parser) -> list[float]:
    name = f"{scope}.{key}" if scope != "attr" else key
    if op not in _NUMBER_OPS:
        raise parser.error(f"{name} is a number: use =, !=, <, <=, >, >= or in")
    if not all(isinstance(v, _Number) for v in values):
        raise parser.error(f"{name} is a number: compare it with a number, not a quoted string")
    numbers = [float(v) for v in values]
    if scope == "attr" and any(abs(n) > _LATEST_PLAUSIBLE_TIME for n in numbers):
        raise parser.error(
            f"{name} is in seconds since the epoch, and {values[0]} looks like milliseconds "
            "(MLflow's unit): divide it by 1000"
        )
    return numbers


def _status(value: str, parser: _Parser) -> str:
    known = {s.value for s in RunStatus}
    if value.lower() not in known:  # MLflow spells statuses in capitals
        raise parser.error(f"status {value!r} is not one of {', '.join(sorted(known))}")
    return value.lower()


def _null_check(scope: str, key: str, negate: bool) -> ColumnElement[bool]:
    if scope == "attr":
        column: ColumnElement[Any] = ATTRIBUTES[key]
        return column.is_not(None) if negate else column.is_(None)
    table, _ = _keyed(scope)
    holders = select(table.c.run_id)
    if scope != "datasets":
        holders = holders.where(table.c.key == key)
    return runs.c.id.in_(holders) if negate else runs.c.id.not_in(holders)


def _keyed(scope: str) -> tuple[Table, str]:
    return {
        "metrics": (latest_metrics, "value"),
        "params": (params, "value"),
        "tags": (tags, "value"),
        "datasets": (run_inputs, "dataset"),
    }[scope]


def parse_filter(text: object) -> ColumnElement[bool] | None:
    """The filter as a boolean SQLAlchemy expression over ``runs``/``experiments``."""
    if text is None:
        return None
    if not checked_text(text, "filter", "metrics.acc > 0.9").strip():
        return None
    return _Parser(str(text)).parse()


def parse_order_by(clauses: object) -> list[ColumnElement[Any]]:
    """``["metrics.acc desc", "start_time"]`` (or one clause as a string) → ORDER BY
    expressions, missing values last and text in code-point order on every backend."""
    if clauses is None:
        return []
    if isinstance(clauses, str):
        clauses = [clauses]
    if not isinstance(clauses, Sequence) or isinstance(clauses, (bytes, bytearray)):
        raise FilterError(
            f"order_by must be a list of clauses such as ['metrics.acc desc'], got "
            f"{type(clauses).__name__}"
        )
    if len(clauses) > MAX_ORDER_BY:
        raise FilterError(f"order_by has {len(clauses)} clauses; the limit is {MAX_ORDER_BY}")
    return [
        _order_clause(checked_text(clause, "an order_by clause", "metrics.acc desc"))
        for clause in clauses
    ]


def _order_clause(clause: str) -> ColumnElement[Any]:
    parser = _Parser(clause, "order_by clause")
    if not parser.tokens:
        raise FilterError("an order_by clause is empty: write FIELD [asc|desc]")
    scope, key = parser.field()
    direction = parser.peek()
    if (
        direction is not None
        and direction.kind == "word"
        and direction.text.lower()
        in (
            "asc",
            "desc",
        )
    ):
        parser.i += 1
    if parser.peek() is not None:
        raise FilterError(
            f"order_by {excerpt(clause)}: expected FIELD [asc|desc], e.g. 'metrics.acc desc'"
            + (" (give each clause as its own list item)" if "," in clause else "")
        )
    if scope == "datasets":
        raise FilterError(f"order_by {excerpt(clause)}: runs cannot be ordered by their inputs")
    numeric = scope == "metrics" or (scope == "attr" and key in _NUMERIC_ATTRIBUTES)
    if scope == "attr":
        column: Any = ATTRIBUTES[key]
    else:
        table, name = _keyed(scope)
        column = (
            select(table.c[name])
            .where(table.c.run_id == runs.c.id, table.c.key == key)
            .scalar_subquery()
        )
    if not numeric:
        column = CodePointOrder(column)
    descending = direction is not None and direction.text.lower() == "desc"
    ordered: ColumnElement[Any] = column.desc() if descending else column.asc()
    return ordered.nulls_last()
