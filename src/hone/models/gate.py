"""Promotion gates: ``accuracy >= champion + 0.01``, ``log_loss < champion and accuracy >=
0.95``. A clause compares two sums; a term is a number, a metric of the candidate
(``accuracy``), or an alias's version's metric (``champion`` alone means the clause's
metric; ``champion.macro_f1`` names one). Errors say the position and what was expected,
as the run filter's do.

    gate   := clause ("and" clause)*
    clause := sum ("<" | "<=" | ">" | ">=") sum
    sum    := term (("+" | "-") term)*
    term   := factor ("*" factor)*
    factor := NUMBER | NAME | NAME "." METRIC | "(" sum ")" | "-" factor
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from hone.errors import FilterError

__all__ = ["Clause", "Gate", "parse_gate"]

MAX_GATE = 1000
_TOKEN = re.compile(
    r"""\s*(?:
      (?P<number>(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?(?![\w.]))
    | (?P<op><=|>=|<|>|==|!=|=)
    | (?P<punct>[-+*().])
    | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:-[A-Za-z][A-Za-z0-9_]*)*)
    )""",
    re.VERBOSE,
)
# Sums of decimals are not exact (0.94 + 0.01 > 0.95 in binary): <= and >= allow for it.
_SLACK = 1e-12
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": lambda a, b: a <= b + _SLACK,
    ">": operator.gt,
    ">=": lambda a, b: a >= b - _SLACK,
}


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str
    pos: int


# A sum as a tree: ("num", v) | ("metric", name) | ("alias", alias, metric) | (op, a, b)
Node = tuple[Any, ...]


@dataclass(frozen=True)
class Clause:
    text: str
    left: Node
    op: str
    right: Node
    metric: str  # the candidate's metric the clause is about

    def aliases(self) -> set[str]:
        return _named("alias", self.left, self.right)


@dataclass(frozen=True)
class Gate:
    text: str
    clauses: tuple[Clause, ...]
    metric_names: tuple[str, ...] = ()  # what a candidate of this task is measured by

    def aliases(self) -> set[str]:
        return set().union(*(c.aliases() for c in self.clauses))

    def check(
        self, candidate: Mapping[str, float], others: Mapping[str, Mapping[str, float] | None]
    ) -> tuple[bool, list[str]]:
        """Whether every clause holds, and each clause said with its numbers. An alias that
        points nowhere (``others[alias]`` None) makes its clauses hold: there is nothing to
        beat yet, and the account says so."""
        ok, said = True, []
        for clause in self.clauses:
            missing = sorted(a for a in clause.aliases() if others.get(a) is None)
            if missing:
                said.append(f"{clause.text}: holds ({', '.join(missing)} not set: nothing to beat)")
                continue
            left = _value(clause.left, candidate, others)
            right = _value(clause.right, candidate, others)
            holds = (
                not math.isnan(left) and not math.isnan(right) and _COMPARE[clause.op](left, right)
            )
            ok &= holds
            said.append(
                f"{clause.text}: {left:.6g} {clause.op} {right:.6g} {'holds' if holds else 'fails'}"
            )
        return ok, said


def _value(
    node: Node, candidate: Mapping[str, float], others: Mapping[str, Mapping[str, float] | None]
) -> float:
    kind = node[0]
    if kind == "num":
        return float(node[1])
    if kind == "metric":
        return float(candidate[node[1]])
    if kind == "alias":
        found = others[node[1]]
        assert found is not None
        return float(found[node[2]])
    if kind == "neg":
        return -_value(node[1], candidate, others)
    a, b = _value(node[1], candidate, others), _value(node[2], candidate, others)
    return a + b if kind == "+" else a - b if kind == "-" else a * b


def parse_gate(
    text: object, metrics: Mapping[str, str], other_task: Mapping[str, str] | None = None
) -> Gate:
    """``text`` parsed; ``metrics`` are the names a candidate is measured by (name →
    direction); any other name is an alias. ``other_task``: the other task's metrics, named
    in the error when a clause uses one."""
    if not isinstance(text, str):
        raise FilterError(
            f"--gate must be text such as 'accuracy >= champion + 0.01', got {text!r}"
        )
    if len(text) > MAX_GATE:
        raise FilterError(f"--gate is {len(text):,} characters; at most {MAX_GATE:,}")
    parser = _Parser(text, metrics, other_task or {})
    return parser.gate()


class _Parser:
    def __init__(
        self, text: str, metrics: Mapping[str, str], other_task: Mapping[str, str]
    ) -> None:
        self.text, self.metrics, self.other_task = text, metrics, other_task
        self.tokens = self._tokenize()
        self.i = 0
        self.depth = 0

    def _tokenize(self) -> list[_Tok]:
        tokens: list[_Tok] = []
        pos, end = 0, len(self.text.rstrip())
        while pos < end:
            match = _TOKEN.match(self.text, pos)
            if match is None:
                start = end - len(self.text[pos:end].lstrip())
                raise self._error(f"unexpected {self.text[start : start + 12]!r}", start)
            kind = match.lastgroup or ""
            value, at = match.group(kind), match.start(kind)
            if kind == "name" and value.lower() == "and":
                kind, value = "and", "and"
            tokens.append(_Tok(kind, value, at))
            pos = match.end()
        if not tokens:
            raise FilterError(
                "--gate is empty: write e.g. 'accuracy >= champion + 0.01' (metrics: "
                f"{', '.join(self.metrics)})"
            )
        return tokens

    def _error(self, message: str, pos: int | None) -> FilterError:
        where = f"at position {pos}" if pos is not None else "at the end"
        return FilterError(f"{message} {where} of gate {self.text!r}")

    def peek(self) -> _Tok | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def expected(self, what: str) -> FilterError:
        tok = self.peek()
        if tok is None:
            return self._error(f"expected {what}", None)
        return self._error(f"expected {what}, found {tok.text!r}", tok.pos)

    def gate(self) -> Gate:
        clauses = [self.clause()]
        while (tok := self.peek()) is not None and tok.kind == "and":
            self.i += 1
            clauses.append(self.clause())
        if self.peek() is not None:
            raise self.expected("'and' or the end")
        return Gate(self.text, tuple(clauses), tuple(self.metrics))

    def clause(self) -> Clause:
        start = self.peek()
        left = self.sum()
        tok = self.peek()
        if tok is None or tok.kind != "op":
            raise self.expected("a comparison (<, <=, >, >=)")
        if tok.text not in _COMPARE:
            raise self._error(
                f"{tok.text!r} is not a gate comparison (use <, <=, > or >=: metrics are "
                "measured, never exactly equal)",
                tok.pos,
            )
        self.i += 1
        right = self.sum()
        end = self.peek()
        text = self.text[start.pos if start else 0 : end.pos if end else len(self.text)].strip()
        named = sorted(_named("metric", left, right))
        if not named:
            raise self._error(
                f"clause {text!r} names none of the candidate's metrics "
                f"({', '.join(self.metrics)}){self._hint(left, right)}",
                start.pos if start else None,
            )
        if len(named) > 1:
            raise self._error(
                f"clause {text!r} names {', '.join(named)}: one metric a clause (join "
                "clauses with 'and')",
                start.pos if start else None,
            )
        metric = named[0]
        left, right = _bind(left, metric), _bind(right, metric)
        return Clause(text, left, tok.text, right, metric)

    def _hint(self, left: Node, right: Node) -> str:
        for name in sorted(_named("alias", left, right)):
            if name in self.other_task:
                return f"; {name} measures the other kind of model"
            near = [m for m in self.metrics if m.lower() == name.lower()]
            if near:
                return f"; did you mean {near[0]}?"
        return ""

    def sum(self) -> Node:
        node = self.term()
        while (tok := self.peek()) is not None and tok.text in ("+", "-"):
            self.i += 1
            node = (tok.text, node, self.term())
        return node

    def term(self) -> Node:
        node = self.factor()
        while (tok := self.peek()) is not None and tok.text == "*":
            self.i += 1
            node = ("*", node, self.factor())
        return node

    def factor(self) -> Node:
        tok = self.peek()
        if tok is None:
            raise self.expected("a number, a metric or an alias")
        self.i += 1
        if tok.kind == "number":
            value = float(tok.text)
            if not math.isfinite(value):
                raise self._error(f"number {tok.text!r} is not finite", tok.pos)
            return ("num", value)
        if tok.text == "-":
            self.depth += 1
            if self.depth > 20:
                raise self._error("signs or parentheses nest deeper than 20", tok.pos)
            node = ("neg", self.factor())
            self.depth -= 1
            return node
        if tok.text == "(":
            self.depth += 1
            if self.depth > 20:
                raise self._error("parentheses nest deeper than 20", tok.pos)
            node = self.sum()
            closing = self.peek()
            if closing is None or closing.text != ")":
                raise self.expected("')'")
            self.i += 1
            self.depth -= 1
            return node
        if tok.kind == "name":
            if tok.text in self.metrics:
                return ("metric", tok.text)
            dot = self.peek()
            if dot is not None and dot.text == ".":
                self.i += 1
                metric = self.peek()
                if metric is None or metric.kind != "name" or metric.text not in self.metrics:
                    raise self.expected(f"a metric after '{tok.text}.' ({', '.join(self.metrics)})")
                self.i += 1
                return ("alias", tok.text, metric.text)
            if tok.text.lower() in ("or", "not"):
                raise self._error(
                    f"{tok.text!r}: a gate joins clauses with 'and' only (every clause must hold)",
                    tok.pos,
                )
            return ("alias", tok.text, None)
        self.i -= 1
        raise self.expected("a number, a metric or an alias")


def _leaves(*nodes: Node) -> Iterator[Node]:
    """The numbers, metrics and aliases of sums, left to right."""
    for node in nodes:
        if node[0] in ("+", "-", "*"):
            yield from _leaves(node[1], node[2])
        elif node[0] == "neg":
            yield from _leaves(node[1])
        else:
            yield node


def _named(kind: str, *nodes: Node) -> set[str]:
    """The names of the ``kind`` leaves (``metric``: the candidate's; ``alias``)."""
    return {leaf[1] for leaf in _leaves(*nodes) if leaf[0] == kind}


def _bind(node: Node, metric: str) -> Node:
    """A bare alias means the clause's metric of that alias's version."""
    if node[0] == "alias" and node[2] is None:
        return ("alias", node[1], metric)
    if node[0] in ("+", "-", "*"):
        return (node[0], _bind(node[1], metric), _bind(node[2], metric))
    if node[0] == "neg":
        return ("neg", _bind(node[1], metric))
    return node
