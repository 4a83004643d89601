"""Model references as people write them: ``NAME@3`` (a version), ``NAME@champion`` (an
alias), ``NAME@latest`` or ``NAME`` alone (the newest version); and the alias name rule."""

from __future__ import annotations

import re
from dataclasses import dataclass

from hone.errors import ValidationError
from hone.ids import NAME_RE, check_slug

__all__ = ["LATEST", "ModelRef", "check_alias", "check_model_name", "parse_model_ref"]

LATEST = "latest"
_ALIAS = re.compile(r"[A-Za-z][A-Za-z0-9_\-]{0,62}")
#: Largest version number: an INTEGER on both backends.
MAX_VERSION = 2**31 - 1


@dataclass(frozen=True)
class ModelRef:
    name: str
    version: int | None = None  # a number, or
    alias: str | None = None  # an alias; neither: the newest version

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}@{self.version}"
        return f"{self.name}@{self.alias or LATEST}"


def check_model_name(name: object) -> str:
    return check_slug(name, "model")


def check_alias(alias: object) -> str:
    """An alias: a letter, then letters, digits, _ or - (at most 63); not a number (that
    would read as a version) and not ``latest`` (which always means the newest)."""
    if not isinstance(alias, str) or not _ALIAS.fullmatch(alias):
        shown = repr(alias) if len(repr(alias)) <= 70 else repr(alias)[:66] + "..."
        raise ValidationError(
            f"alias {shown}: an alias starts with a letter, then letters, digits, _ or - "
            "(at most 63), e.g. champion, challenger, prod-eu"
        )
    if alias.lower() == LATEST:
        raise ValidationError(
            "alias 'latest' is taken: NAME@latest always means the newest version"
        )
    return alias


def parse_model_ref(ref: object, *, what: str = "model reference") -> ModelRef:
    """``NAME``, ``NAME@N``, ``NAME@ALIAS`` or ``NAME@latest``, checked."""
    if not isinstance(ref, str):
        raise ValidationError(
            f"{what} must be text such as digits@3 or digits@champion, got {type(ref).__name__}"
        )
    name, at, tail = ref.partition("@")
    if not NAME_RE.fullmatch(name):
        shown = repr(ref) if len(ref) <= 80 else repr(ref[:76]) + "..."
        raise ValidationError(
            f"{what} {shown}: give NAME@VERSION or NAME@ALIAS (e.g. digits@3, "
            "digits@champion); a model name is letters, digits, _ . - (at most 100)"
        )
    if at and not tail:
        raise ValidationError(f"{what} {ref!r}: nothing after '@' (give a version or an alias)")
    if not at or tail == LATEST:
        return ModelRef(name)
    if tail.isdigit() and tail.isascii():
        if len(tail) > 10 or not 1 <= int(tail) <= MAX_VERSION:
            raise ValidationError(
                f"{what} {ref!r}: versions are numbered from 1 (to at most {MAX_VERSION:,})"
            )
        return ModelRef(name, version=int(tail))
    try:
        return ModelRef(name, alias=check_alias(tail))
    except ValidationError as exc:
        raise ValidationError(f"{what} {ref!r}: {exc}") from None
