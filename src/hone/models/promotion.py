"""Promotion: a candidate version and the versions the gate names (``champion``) evaluated
on the same rows; the alias moves only if the gate holds, and only if it did not move
while the evaluation ran (two promotions at once: one wins, the other is told). The
evaluation is a run either way, and the alias's audit entry cites it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hone.data.api import get as get_dataset
from hone.errors import ConflictError, FilterError, UserError
from hone.models.evaluation import (
    CLASSIFICATION,
    REGRESSION,
    Evaluation,
    check_fits,
    default_split,
    labeled_rows,
    parse_data_ref,
    score,
)
from hone.models.gate import parse_gate
from hone.models.loading import load_version
from hone.models.workspace import WorkspaceLike, opened
from hone.registry import (
    ModelRef,
    ModelVersion,
    aliases_of,
    check_alias,
    get_version,
    move_alias,
    parse_model_ref,
)
from hone.registry.aliases import check_why
from hone.tracking.entities import json_number
from hone.tracking.start import start_run

__all__ = ["EXPERIMENT", "Promotion", "promote"]

#: The experiment promotion runs are recorded in.
EXPERIMENT = "promotions"


@dataclass(frozen=True)
class Promotion:
    candidate: str
    alias: str
    passed: bool  # the gate held
    moved: bool  # the alias now points at the candidate
    previous: int | None  # where the alias pointed before
    run_id: str  # the evaluation's run
    account: list[str]  # each clause with its numbers
    evaluations: dict[str, Evaluation] = field(default_factory=dict)  # "candidate", aliases

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate,
            "alias": self.alias,
            "passed": self.passed,
            "moved": self.moved,
            "previous": self.previous,
            "run_id": self.run_id,
            "account": self.account,
            "metrics": {
                who: {k: json_number(v) for k, v in e.metrics.items()}
                for who, e in self.evaluations.items()
            },
        }


def promote(
    ref: str,
    to: str,
    gate: str,
    on: str,
    *,
    why: str | None = None,
    workspace: WorkspaceLike = None,
) -> Promotion:
    """Move alias ``to`` to ``ref`` if ``gate`` holds on ``on`` (``NAME@V[:split]``; the
    test split when none is given and it has one)."""
    ws = opened(workspace)
    check_alias(to)
    why = check_why(why)
    data_ref, split = parse_data_ref(on)
    candidate = get_version(ws.db, parse_model_ref(ref))
    name = candidate.model
    regression = candidate.signature.get("classes") is None
    parsed = parse_gate(
        gate,
        REGRESSION if regression else CLASSIFICATION,
        CLASSIFICATION if regression else REGRESSION,
    )
    data = get_dataset(data_ref, workspace=ws.workspace)
    split = default_split(data, split)
    seen = aliases_of(ws.db, name)
    if seen.get(to) == candidate.version:
        raise UserError(f"{candidate.ref} already is {name}@{to}: nothing to promote")
    unknown = sorted(a for a in parsed.aliases() if a != to and a not in seen)
    if unknown:
        have = f"its aliases: {', '.join(seen)}" if seen else "it has no aliases"
        raise FilterError(
            f"gate {parsed.text!r} names {', '.join(map(repr, unknown))}: neither a metric "
            f"({', '.join(parsed.metric_names)}) nor an alias of {name} ({have})"
        )
    needed = {alias: seen.get(alias) for alias in parsed.aliases()}
    compared = {
        alias: get_version(ws.db, ModelRef(name, version=number))
        for alias, number in needed.items()
        if number is not None
    }
    for alias, other in compared.items():
        _check_comparable(candidate, other, alias)
    if seen.get(to) is not None and to not in compared:  # what clients of the alias get now
        current = get_version(ws.db, ModelRef(name, version=seen[to]))
        _check_comparable(candidate, current, to)
    predictors = {"candidate": load_version(candidate, ws.db, ws.blobs)}
    predictors.update({a: load_version(v, ws.db, ws.blobs) for a, v in compared.items()})
    for predictor in predictors.values():
        check_fits(predictor, data)
    rows = labeled_rows(data, split)  # read once: every version is measured on these
    evaluations = {who: score(predictor, rows) for who, predictor in predictors.items()}
    passed, account = parsed.check(
        evaluations["candidate"].metrics,
        {alias: (evaluations[alias].metrics if alias in evaluations else None) for alias in needed},
    )
    where = f"{data.ref}:{split}" if split else data.ref
    run = start_run(
        EXPERIMENT,
        f"promote {candidate.ref} to {to}",
        params={
            "candidate": candidate.ref,
            "alias": to,
            "gate": parsed.text,
            "data": f"{data.name}@{data.id}",
            "split": split or "(all rows)",
            **{
                f"{alias}.version": n if n is not None else "(unset)" for alias, n in needed.items()
            },
        },
        tags={"hone.kind": "promotion", "hone.model": name},
        workspace=ws.workspace,
    )
    outcome = "error"
    try:
        run.log_input(data, split)
        for who, evaluation in evaluations.items():
            run.log_metrics({f"{who}/{k}": v for k, v in evaluation.metrics.items()}, step=0)
        run.set_tags(
            {"hone.gate": "passed" if passed else "failed", "hone.gate.account": "\n".join(account)}
        )
        moved = False
        if passed:
            said = f"gate {parsed.text!r} held on {where}: " + "; ".join(account)
            try:
                event = move_alias(
                    ws.db,
                    name,
                    to,
                    candidate.version,
                    why=f"{why} ({said})" if why else said,
                    run_id=run.id,
                    expect=seen.get(to),
                    also={a: n for a, n in needed.items() if a != to},
                )
            except ConflictError as exc:
                outcome = "lost"
                raise ConflictError(
                    f"{candidate.ref} passed the gate, but meanwhile another process moved an "
                    f"alias it depends on: {exc}"
                ) from None
            moved = event is not None
        outcome = "moved" if moved else "held"
    finally:
        run.set_tag("hone.promotion", outcome)
        run.end()
    return Promotion(
        candidate=candidate.ref,
        alias=to,
        passed=passed,
        moved=moved,
        previous=seen.get(to),
        run_id=run.id,
        account=account,
        evaluations=evaluations,
    )


def _check_comparable(candidate: ModelVersion, other: ModelVersion, alias: str) -> None:
    """A promotion keeps what clients send and what they get back: the same input, task
    and classes as the version the gate compares against."""
    mine, theirs = candidate.signature, other.signature
    for what, key in (("input", "inputs"), ("classes", "classes"), ("task", "task")):
        if mine.get(key) != theirs.get(key):
            raise UserError(
                f"{candidate.ref} and {alias} ({other.ref}) differ in their {what} "
                f"({_said(mine.get(key))} vs {_said(theirs.get(key))}): a promotion must keep "
                "what clients send and get back; register it under another name"
            )


def _said(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
