"""The SQL a filter compiles to, spelled per backend so that every backend answers alike.

SQLite's LIKE ignores case and PostgreSQL's does not; PostgreSQL orders and folds text by
its locale and SQLite by code point. These constructs compile to what makes both agree:
``like`` is case-sensitive (GLOB on SQLite, ``LIKE … ESCAPE '\\'`` elsewhere), ``ilike``
folds A-Z only, and text sorts by code point.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Boolean, ColumnElement, bindparam, func, not_
from sqlalchemy import String as SqlString
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.visitors import InternalTraversal, _TraverseInternalsType

from hone.errors import FilterError

__all__ = ["MAX_PATTERN_CHARS", "OPS", "CodePointOrder", "Exact", "Match", "Pattern"]

MAX_PATTERN_CHARS = 10_000  # ≤ 40 kB as a GLOB: under SQLite's 50 kB pattern limit
ESCAPE = "\\"
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


@dataclass(frozen=True)
class Pattern:
    """A like pattern, spelled for each backend: SQL's LIKE (with ``\\`` as its escape) and
    SQLite's GLOB, which is case-sensitive where SQLite's LIKE is not."""

    like: str
    glob: str

    @classmethod
    def parse(cls, text: str, *, fold: bool, error: Callable[[str], FilterError]) -> Pattern:
        if len(text) > MAX_PATTERN_CHARS:
            raise error(
                f"a like pattern of {len(text):,} characters is over the limit of "
                f"{MAX_PATTERN_CHARS:,}"
            )
        if fold:
            text = text.translate(_ASCII_LOWER)
        like, glob = [], []
        chars = iter(text)
        for char in chars:
            if char in "%_":
                like.append(char)
                glob.append("*" if char == "%" else "?")
                continue
            if char == "\\":
                char = next(chars, "")
                if not char:
                    raise error(
                        "a like pattern ends in a lone backslash (write \\\\ for a literal one)"
                    )
            like.append("\\" + char if char in "%_\\" else char)
            glob.append(f"[{char}]" if char in "*?[" else char)
        return cls("".join(like), "".join(glob))


class Match(ColumnElement[bool]):
    """``column LIKE pattern``, compiled per backend so that every backend answers alike:
    case-sensitive, or with ``fold`` ignoring the case of ASCII letters only."""

    __visit_name__ = "hone_match"
    inherit_cache = True
    type = Boolean()
    _is_implicitly_boolean = True
    _traverse_internals: _TraverseInternalsType = [  # noqa: RUF012 (SQLAlchemy's type)
        ("column", InternalTraversal.dp_clauseelement),
        ("like_pattern", InternalTraversal.dp_clauseelement),
        ("glob_pattern", InternalTraversal.dp_clauseelement),
        ("fold", InternalTraversal.dp_boolean),
    ]

    def __init__(self, column: ColumnElement[Any], pattern: Pattern, *, fold: bool) -> None:
        self.column = column
        self.like_pattern = bindparam(None, pattern.like, SqlString())
        self.glob_pattern = bindparam(None, pattern.glob, SqlString())
        self.fold = fold


@compiles(Match)
def _match_sql(element: Match, compiler: SQLCompiler, **kw: Any) -> str:
    # Under "C", lower() folds A-Z only, whatever the database's locale: as SQLite does.
    column = func.lower(element.column.collate("C")) if element.fold else element.column
    return f"({compiler.process(column.like(element.like_pattern, escape=ESCAPE), **kw)})"


@compiles(Match, "sqlite")
def _match_sqlite(element: Match, compiler: SQLCompiler, **kw: Any) -> str:
    column = func.lower(element.column) if element.fold else element.column
    return f"({compiler.process(column.op('GLOB')(element.glob_pattern), **kw)})"


class CodePointOrder(ColumnElement[Any]):
    """Text sorted by code point on every backend (PostgreSQL would use its locale)."""

    __visit_name__ = "hone_code_point_order"
    inherit_cache = True
    _traverse_internals: _TraverseInternalsType = [  # noqa: RUF012 (SQLAlchemy's type)
        ("expr", InternalTraversal.dp_clauseelement)
    ]

    def __init__(self, expr: ColumnElement[Any]) -> None:
        self.expr = expr
        self.type = expr.type


@compiles(CodePointOrder)
def _code_point_order(element: CodePointOrder, compiler: SQLCompiler, **kw: Any) -> str:
    return str(compiler.process(element.expr.collate("C"), **kw))


@compiles(CodePointOrder, "sqlite")
def _code_point_order_sqlite(element: CodePointOrder, compiler: SQLCompiler, **kw: Any) -> str:
    return str(compiler.process(element.expr, **kw))  # SQLite's default collation is binary


#: Each operator of the language, as an expression builder over (column, operands).
OPS: dict[str, Callable[[Any, Any], ColumnElement[bool]]] = {
    "=": lambda c, v: c == v[0],
    "!=": lambda c, v: c != v[0],
    "<": lambda c, v: c < v[0],
    "<=": lambda c, v: c <= v[0],
    ">": lambda c, v: c > v[0],
    ">=": lambda c, v: c >= v[0],
    "in": lambda c, v: c.in_(v),
    "not in": lambda c, v: c.not_in(v),
    "like": lambda c, v: Match(c, v[0], fold=False),
    "not like": lambda c, v: not_(Match(c, v[0], fold=False)),
    "ilike": lambda c, v: Match(c, v[0], fold=True),
    "not ilike": lambda c, v: not_(Match(c, v[0], fold=True)),
}


class Exact(ColumnElement[Any]):
    """A text column compared as it is. On SQLite it carries its (default, binary)
    collation explicitly: otherwise ``value = 'x'`` lets SQLite propagate the constant
    into ``substr(value, 1, 100) = 'x'`` and so stop using the params index on it."""

    __visit_name__ = "hone_exact"
    inherit_cache = True
    _traverse_internals: _TraverseInternalsType = [  # noqa: RUF012 (SQLAlchemy's type)
        ("expr", InternalTraversal.dp_clauseelement)
    ]

    def __init__(self, expr: ColumnElement[Any]) -> None:
        self.expr = expr
        self.type = expr.type


@compiles(Exact)
def _exact(element: Exact, compiler: SQLCompiler, **kw: Any) -> str:
    return str(compiler.process(element.expr, **kw))


@compiles(Exact, "sqlite")
def _exact_sqlite(element: Exact, compiler: SQLCompiler, **kw: Any) -> str:
    return str(compiler.process(element.expr.collate("BINARY"), **kw))
