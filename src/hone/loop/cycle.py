"""The feedback loop, once: harvest → train a challenger → register it → promote it through
the gate if it beats the champion (servers following the alias then switch to it).

Every step is tracked under the loop's own run (experiment ``loop``): the harvested dataset
version is its input, the challenger's training run its child, the promotion's evaluation
run (experiment ``promotions``) is named in its tags. Only the promotion's conditional move
changes the champion, so a step that fails leaves it as it was. One loop run per model at a
time (``lease``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hone.data.dataset import DatasetVersion
from hone.data.versions import get_row
from hone.errors import FilterError, HoneError, NotFoundError, ValidationError
from hone.loop.lease import held
from hone.models.evaluation import CLASSIFICATION, REGRESSION
from hone.models.gate import parse_gate
from hone.models.manage import alias
from hone.models.promotion import promote
from hone.models.registering import register
from hone.models.workspace import WorkspaceLike, opened
from hone.predictions.harvest import (
    FRESH_SPLIT,
    PREPROCESSING,
    Harvest,
    count_harvestable,
    count_new_labels,
    fresh_rows,
    harvest,
    unlink_harvest,
)
from hone.registry import ModelVersion, aliases_of, get_version
from hone.registry.refs import ModelRef, check_alias, check_model_name
from hone.tracking.entities import RunStatus
from hone.tracking.start import start_run
from hone.train.launch import launch
from hone.train.prepare import prepare
from hone.train.topology import Topology

__all__ = ["DEFAULT_GATE", "EXPERIMENT", "LoopResult", "champion_base", "new_labels", "run_loop"]

EXPERIMENT = "loop"
DEFAULT_GATE = "accuracy > champion"

Say = Callable[[str], None]


@dataclass
class LoopResult:
    model: str
    outcome: str  # "skipped" (too few new labels), "promoted", "held" (the gate failed)
    message: str
    new_labels: int
    run_id: str | None = None
    champion_before: int | None = None
    champion_after: int | None = None
    challenger: str | None = None
    harvest: dict[str, Any] | None = None
    promotion: dict[str, Any] | None = None
    steps: dict[str, str] = field(default_factory=dict)  # step → its run id

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "outcome": self.outcome,
            "message": self.message,
            "new_labels": self.new_labels,
            "run_id": self.run_id,
            "champion_before": self.champion_before,
            "champion_after": self.champion_after,
            "challenger": self.challenger,
            "harvest": self.harvest,
            "promotion": self.promotion,
            "steps": self.steps,
        }


def champion_base(
    ws_db: Any, blobs: Any, home: Any, name: str, champion: str
) -> tuple[ModelVersion, DatasetVersion]:
    """The champion's version and the dataset version it trained on."""
    try:
        version = get_version(ws_db, ModelRef(name, alias=champion))
    except NotFoundError as exc:
        raise NotFoundError(
            f"{exc}; the loop retrains the {champion}: set one with "
            f"hone models alias {name}@N {champion}"
        ) from None
    row = get_row(ws_db, version.dataset_version)
    if row is None:
        raise NotFoundError(
            f"{version.ref} trained on dataset version {version.dataset_version[:12]}, which "
            "is not recorded here"
        )
    return version, DatasetVersion(row, blobs, ws_db, home)


def new_labels(name: str, *, champion: str = "champion", workspace: WorkspaceLike = None) -> int:
    """Labeled predictions of ``name`` that no harvest has taken yet."""
    ws = opened(workspace)
    check_model_name(name)
    get_version(ws.db, ModelRef(name, alias=champion))
    return count_new_labels(ws.db, name)


def run_loop(
    name: str,
    *,
    min_new_labels: int = 1,
    fresh_share: float = 0.2,
    preprocessing: str = "auto",
    gate: str = DEFAULT_GATE,
    champion: str = "champion",
    challenger: str = "challenger",
    nproc: int = 1,
    trials: int = 0,
    workspace: WorkspaceLike = None,
    say: Say | None = None,
) -> LoopResult:
    """Run the loop once for model ``name`` (see the module's doc)."""
    tell = say or (lambda _: None)
    check_model_name(name)
    check_alias(champion)
    check_alias(challenger)
    if champion == challenger:
        raise ValidationError(f"the champion and challenger aliases must differ ({champion!r})")
    if (
        isinstance(min_new_labels, bool)
        or not isinstance(min_new_labels, int)
        or min_new_labels < 1
    ):
        raise ValidationError(f"min new labels {min_new_labels!r}: give a whole number >= 1")
    if isinstance(nproc, bool) or not isinstance(nproc, int) or not 1 <= nproc <= 64:
        raise ValidationError(f"nproc {nproc!r}: give the challenger's training processes, 1 to 64")
    if isinstance(trials, bool) or not isinstance(trials, int) or not 0 <= trials <= 1000:
        raise ValidationError(f"trials {trials!r}: give 0 (no study) to 1,000")
    ok = isinstance(fresh_share, (int, float)) and not isinstance(fresh_share, bool)
    if not ok or not 0 <= fresh_share <= 0.9:
        raise ValidationError(f"fresh share {fresh_share!r}: give a number from 0 to 0.9")
    if preprocessing not in PREPROCESSING:
        raise ValidationError(f"preprocessing {preprocessing!r}: give auto, keep or refit")
    Topology(nproc_per_node=nproc).check()
    ws = opened(workspace)
    with held(ws.db, name) as lease:
        version, base = champion_base(ws.db, ws.blobs, ws.workspace.home, name, champion)
        _check_gate(ws, version, gate, champion)
        if (version.body.get("params") or {}).get("val_split") == FRESH_SPLIT:
            raise ValidationError(  # it would pick checkpoints on the rows that judge it
                f"{version.ref} validated on the {FRESH_SPLIT} split, which the loop keeps "
                "for judging the challenger: retrain the champion with another val_split"
            )
        waiting = count_new_labels(ws.db, name)
        if waiting < min_new_labels:
            return LoopResult(
                name,
                "skipped",
                f"{waiting} new label{'s' * (waiting != 1)} of {name} since the last harvest; "
                f"the loop waits for {min_new_labels}: nothing changed",
                waiting,
                champion_before=version.version,
                champion_after=version.version,
            )
        taking = count_harvestable(ws.db, name, base.id)
        if not fresh_rows(taking, fresh_share) and not base.splits.get(FRESH_SPLIT):
            raise ValidationError(
                f"{taking} labeled prediction{'s' * (taking != 1)} to harvest hold out none "
                f"at a fresh share of {fresh_share:g}, and {base.ref} has no {FRESH_SPLIT} "
                "rows: the challenger could not be judged (label more, or raise "
                "--fresh-share); nothing changed"
            )
        run = start_run(
            EXPERIMENT,
            f"loop {name}",
            params={
                "model": name,
                "champion": version.ref,
                "base": f"{base.name}@{base.id}",
                "min_new_labels": min_new_labels,
                "fresh_share": fresh_share,
                "preprocessing": preprocessing,
                "gate": gate,
                "nproc": nproc,
                "trials": trials,
            },
            tags={"hone.kind": "loop", "hone.model": name},
            workspace=ws.workspace,
        )
        lease.name_run(run.id)
        result = LoopResult(name, "failed", "", waiting, run.id, champion_before=version.version)
        try:
            _steps(
                result,
                ws,
                version,
                base,
                run,
                fresh_share,
                preprocessing,
                gate,
                champion,
                challenger,
                nproc,
                trials,
                tell,
            )
        except BaseException as exc:
            if result.harvest is not None:  # its labels count as new again for the next run
                unlink_harvest(ws.db, str(result.harvest["version_id"]))
            run.set_tags({"hone.loop": "failed", "hone.loop.error": str(exc)[:1000]})
            run.end(RunStatus.FAILED)
            raise
        run.set_tags({"hone.loop": result.outcome})
        run.end()
    return result


def _study(
    ws: Any,
    recipe: str,
    data: DatasetVersion,
    params: dict[str, Any],
    trials: int,
    loop_run: str,
    result: LoopResult,
    tell: Say,
) -> dict[str, Any]:
    """A short study of the recipe's search space on the harvested data, the champion's
    other params fixed (the recipe's own values of the searched ones are the first trial):
    the best trial's params."""
    from hone.train.recipes import load_recipe
    from hone.tune.plan import plan_recipe_study
    from hone.tune.search import run_plan
    from hone.tune.space import parse_space

    loaded = load_recipe(recipe)
    space = parse_space(getattr(loaded.obj, "search_space", None), f"recipe {loaded.ref}")
    searched = set(space.dims or ())
    fixed = {k: v for k, v in params.items() if k not in searched}
    metric = params.get("best_metric")
    tell(f"a short study: {trials} trials of {recipe}'s search space on {data.ref}")
    plan = plan_recipe_study(
        recipe,
        f"{data.name}@{data.id}",
        workspace=ws.workspace,
        trials=trials,
        metric=str(metric) if metric else None,
        params=fixed,
        seed=int(params["seed"]) if isinstance(params.get("seed"), int) else None,
        study=f"loop-{data.name}-{loop_run[:12]}",
        experiment=EXPERIMENT,
    )
    outcome = run_plan(plan)
    result.steps["study"] = outcome.run_id
    if outcome.best is None:
        raise HoneError(f"the loop's study {outcome.name} {outcome.state}: {outcome.error}")
    best: dict[str, Any] = dict(outcome.best["params"])
    tell(f"study {outcome.name}: best trial {outcome.best['trial']}: {best}")
    return best


def _check_gate(ws: Any, version: ModelVersion, gate: str, champion: str) -> None:
    """The gate, checked before any work: its grammar, metrics, and that every alias it
    names exists (the champion does)."""
    regression = version.signature.get("classes") is None
    parsed = parse_gate(
        gate,
        REGRESSION if regression else CLASSIFICATION,
        CLASSIFICATION if regression else REGRESSION,
    )
    seen = aliases_of(ws.db, version.model)
    unknown = sorted(a for a in parsed.aliases() if a not in seen and a != champion)
    if unknown:
        raise FilterError(
            f"gate {parsed.text!r} names {', '.join(map(repr, unknown))}: neither a metric "
            f"({', '.join(parsed.metric_names)}) nor an alias of {version.model} (its aliases: "
            f"{', '.join(seen)})"
        )


def _steps(
    result: LoopResult,
    ws: Any,
    version: ModelVersion,
    base: DatasetVersion,
    run: Any,
    fresh_share: float,
    preprocessing: str,
    gate: str,
    champion: str,
    challenger: str,
    nproc: int,
    trials: int,
    tell: Say,
) -> None:
    name = version.model
    tell(f"{result.new_labels} new labels: harvesting into {base.ref}")
    harvested: Harvest = harvest(
        ws.db, ws.blobs, name, base, fresh_share=fresh_share, preprocessing=preprocessing
    )
    data = harvested.version
    result.harvest = harvested.to_dict()
    run.log_input(data)
    run.set_tags(
        {"hone.loop.harvest": data.ref, "hone.loop.preprocessing": harvested.preprocessing}
    )
    if not data.splits.get(FRESH_SPLIT):
        raise ValidationError(
            f"{data.ref} has no {FRESH_SPLIT} rows to judge the challenger on: label more "
            "predictions, or raise the fresh share"
        )
    tell(
        f"{data.ref}: {harvested.rows} labeled predictions added ({harvested.splits['train']} "
        f"train, {harvested.splits['fresh']} fresh); preprocessing {harvested.why}"
    )
    params = dict(version.body.get("params") or {})
    recipe = str(version.body["recipe"])
    if params.get("val_split") == "test" and data.splits.get("validation"):
        # The champion reported its test split (the quickstart's does); a challenger's
        # checkpoints and a study's trials are chosen on validation, so test stays unseen.
        params["val_split"] = "validation"
    run.log_params({"challenger.val_split": params.get("val_split", "validation")})
    if trials:
        params.update(_study(ws, recipe, data, params, trials, run.id, result, tell))
    topology = Topology(nproc_per_node=nproc)
    job = prepare(
        recipe, data, params, world_size=topology.world_size, workspace=ws.workspace, where="params"
    )
    tell(
        f"training a challenger: {recipe} with {version.ref}'s params"
        f"{' and the study' + chr(39) + 's best' if trials else ''} on {data.ref}"
    )
    trained = launch(
        job,
        topology,
        experiment=EXPERIMENT,
        name=f"challenger of {name}",
        parent=run.id,
        tags={"hone.kind": "loop-train", "hone.model": name},
    )
    result.steps["train"] = trained.run_id
    if trained.status != RunStatus.FINISHED:
        raise HoneError(f"training the challenger failed (run {trained.run_id}): {trained.error}")
    registered = register(name, run=trained.run_id, workspace=ws.workspace)
    challenger_version = registered.version
    result.challenger = challenger_version.ref
    alias(
        challenger_version.ref,
        challenger,
        why=f"trained by loop run {run.id}",
        workspace=ws.workspace,
    )
    run.set_tags({"hone.loop.challenger": challenger_version.ref})
    tell(
        f"registered {challenger_version.ref} as {challenger}; judging it on "
        f"{data.ref}:{FRESH_SPLIT}"
    )
    promotion = promote(
        challenger_version.ref,
        champion,
        gate,
        f"{data.name}@{data.id}:{FRESH_SPLIT}",
        why=f"loop run {run.id}",
        workspace=ws.workspace,
    )
    result.promotion = promotion.to_dict()
    result.steps["promotion"] = promotion.run_id
    run.set_tags({"hone.loop.promotion": promotion.run_id})
    after = get_version(ws.db, ModelRef(name, alias=champion))
    result.champion_after = after.version
    if promotion.moved:
        result.outcome = "promoted"
        result.message = f"{challenger_version.ref} is the new {champion}: " + "; ".join(
            promotion.account
        )
    else:
        result.outcome = "held"
        result.message = f"{version.ref} stays {champion}: " + "; ".join(promotion.account)
