"""The run filter's lexer: what a filter text may be (a string, bounded, storable), and
its tokens, each with its position for error messages. ``filter.py`` parses them."""

from __future__ import annotations

import re
from dataclasses import dataclass

from hone.errors import FilterError

__all__ = ["MAX_FILTER_CHARS", "Token", "checked_text", "excerpt", "tokenize"]

MAX_FILTER_CHARS = 100_000
_TOKEN = re.compile(
    r"""\s*(?:
      (?P<number>[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?(?![\w.]))
    | (?P<string>'(?:[^'\\]|\\[\s\S])*'|"(?:[^"\\]|\\[\s\S])*")
    | (?P<op><=|>=|!=|<>|==|=|<|>)
    | (?P<punct>[(),])
    | (?P<quoted>`[^`]+`)
    | (?P<word>[A-Za-z_][\w\-./:]*)
    )""",
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "not", "in", "like", "ilike", "is", "null"}
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    pos: int


def excerpt(text: str, pos: int | None = None) -> str:
    """The filter as shown in an error: whole if short, else around ``pos``."""
    if len(text) <= 120:
        return repr(text)
    start = max(0, (pos or 0) - 40)
    return f"{'…' if start else ''}{text[start : start + 80]!r}… ({len(text):,} characters)"


def checked_text(text: object, what: str, example: str) -> str:
    if not isinstance(text, str):
        raise FilterError(
            f"{what} must be a string such as {example!r}, got {type(text).__name__} "
            f"{str(text)[:40]!r}"
        )
    if len(text) > MAX_FILTER_CHARS:
        raise FilterError(
            f"{what} is {len(text):,} characters; the limit is {MAX_FILTER_CHARS:,} "
            "(narrow the search with fewer or shorter clauses)"
        )
    bad = _UNSTORABLE.search(text)
    if bad is not None:
        raise FilterError(
            f"{what} has {bad.group()!r} at position {bad.start()}: a NUL byte or a lone "
            f"surrogate can never be stored, so no run can match it ({excerpt(text, bad.start())})",
            position=bad.start(),
        )
    return text


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos, end = 0, len(text.rstrip())
    while pos < end:
        match = _TOKEN.match(text, pos)
        if match is None:
            start = end - len(text[pos:end].lstrip())
            what = "a string that is never closed" if text[start] in "'\"" else "unexpected"
            raise FilterError(
                f"{what} {text[start : start + 12]!r} at position {start} in filter "
                f"{excerpt(text, start)}",
                position=start,
            )
        kind = group = match.lastgroup or ""
        value = match.group(group)
        if kind == "word" and value.lower() in _KEYWORDS:
            kind, value = "kw", value.lower()
        tokens.append(Token(kind, value, match.start(group)))
        pos = match.end()
    return tokens
