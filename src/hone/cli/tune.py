"""``hone tune``: search a recipe's hyperparameters with Optuna, each trial a tracked run;
``hone tune show STUDY`` and ``hone tune list``."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table
from typer.core import TyperGroup

from hone.cli.output import (
    console,
    count_progress,
    fmt_duration,
    fmt_number,
    fmt_time,
    print_json,
)
from hone.cli.state import state
from hone.errors import UserError, ValidationError

if TYPE_CHECKING:
    from hone.tune.results import StudyOutcome
    from hone.tune.study import OpenStudy

__all__ = ["tune_app", "watch_study"]


class _DefaultToRun(TyperGroup):
    """``hone tune RECIPE ...`` is ``hone tune run RECIPE ...``: the group's commands
    (show, list) are found by name, anything else starts a study."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["run", *args]
        result: list[str] = super().parse_args(ctx, args)
        return result


tune_app = typer.Typer(
    cls=_DefaultToRun,
    help="Search hyperparameters with Optuna: hone tune RECIPE --data NAME@V, show, list.",
    no_args_is_help=True,
)
JSON = typer.Option(False, "--json", help="Print machine-readable JSON.")


def _need_optuna() -> None:
    try:
        import optuna  # noqa: F401
    except ImportError:
        raise UserError(
            "hone tune needs Optuna, which is not installed: pip install 'hone[tune]'"
        ) from None


@tune_app.command("run")
def run(
    recipe: str = typer.Argument(
        None, help="builtin:cnn, builtin:mlp, package.module[:object] or file.py[:object]."
    ),
    data: str = typer.Option(None, "--data", "-d", help="Dataset version, e.g. digits@latest."),
    trials: int = typer.Option(None, "--trials", "-n", help="Trials in the study (default 20)."),
    parallel: int = typer.Option(1, "--parallel", help="Trials at once (processes)."),
    sampler: str = typer.Option("tpe", "--sampler", help="tpe, random, grid or cmaes."),
    pruner: str = typer.Option("median", "--pruner", help="median, asha, hyperband or none."),
    metric: str = typer.Option(
        None, "--metric", help="What to optimize (default val/acc, or val/loss)."
    ),
    direction: str = typer.Option(
        None, "--direction", help="maximize or minimize (default from the metric's name)."
    ),
    timeout: float = typer.Option(None, "--timeout", help="Start no trial after S seconds."),
    study: str = typer.Option(None, "--study", help="Study name (joins or resumes it)."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted study."),
    param: list[str] = typer.Option([], "--param", "-p", help="Fixed name=value (repeatable)."),
    space: str = typer.Option(
        None, "--space", help="Search space as JSON (or a JSON file) instead of the recipe's."
    ),
    seed: int = typer.Option(None, "--seed", help="The sampler's seed."),
    nproc_per_node: int = typer.Option(1, "--nproc-per-node", help="Processes per trial."),
    experiment: str = typer.Option("tune", "--experiment", "-e", help="Experiment name."),
    baseline: bool = typer.Option(
        True, "--baseline/--no-baseline", help="Trial 0 tries the recipe's own values."
    ),
    json_out: bool = JSON,
) -> None:
    """Search RECIPE's hyperparameters on a dataset version: a study of trials."""
    _need_optuna()
    from hone.train.params import parse_overrides
    from hone.tune.plan import plan_recipe_study
    from hone.tune.search import run_plan
    from hone.tune.space import space_from_text

    if resume and study is None:
        raise ValidationError("--resume continues a study: name it with --study NAME")
    if not recipe or not data:
        raise ValidationError("give a RECIPE and --data NAME@VERSION")
    fixed: dict[str, Any] = parse_overrides(param)
    given_space = space_from_text(space).describe() if space is not None else None
    ws = state.opened()
    with console.status("checking the recipe, the data and the search space …"):
        plan = plan_recipe_study(
            recipe,
            data,
            workspace=ws,
            trials=trials,
            parallel=parallel,
            sampler=sampler,
            pruner=pruner,
            metric=metric,
            direction=direction,
            timeout=timeout,
            study=study,
            resume=resume,
            params=fixed,
            space=given_space,
            nproc_per_node=nproc_per_node,
            seed=seed,
            experiment=experiment,
            baseline=baseline,
        )
    if not json_out:
        config = plan.config
        console.print(
            f"[bold]tune[/] {config['recipe']} on {plan.version_ref}: {config['direction']} "
            f"{config['metric']}, sampler {config['sampler']}, pruner {config['pruner']}, "
            f"{parallel} at once"
        )
        for note in plan.notes:
            console.print(f"  note: {note}")
    outcome = run_plan(plan, watch=None if json_out else watch_study)
    if json_out:
        print_json(outcome.to_dict())
    else:
        _report(outcome)
    if outcome.state == "interrupted":
        raise typer.Exit(130)
    if outcome.state == "stopped":
        raise typer.Exit(1)


def watch_study(study: OpenStudy) -> Any:
    """A progress bar over the study's trials, read from its journal (every process's)."""
    from hone.tune.results import count_states

    console.print(f"[bold]study[/] {study.name}  (run {study.run_id})")
    stop = threading.Event()

    def loop() -> None:
        with count_progress("trials") as progress:
            task = progress.add_task("tune", total=study.record.budget, status="starting …")
            while True:
                try:
                    trials = study.optuna.get_trials(deepcopy=False)
                    record = study.refresh()
                except Exception:  # the store is busy a moment: next time
                    trials, record = [], study.record
                counts = count_states(trials)
                done = counts["complete"] + counts["pruned"] + counts["failed"]
                best = _best_value(trials, study.config.get("direction") == "maximize")
                status = (
                    f"✓{counts['complete']} ✂{counts['pruned']} ✗{counts['failed']} "
                    f"running {counts['running']}"
                    + (f"  best {fmt_number(best)}" if best is not None else "")
                )
                progress.update(task, completed=done, total=record.budget, status=status)
                if stop.wait(0.5):
                    break

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()

    def finish() -> None:
        stop.set()
        thread.join(timeout=5)

    return finish


def _best_value(trials: list[Any], maximize: bool) -> float | None:
    import optuna

    values: list[float] = [
        float(t.value)
        for t in trials
        if t.state == optuna.trial.TrialState.COMPLETE and t.value is not None
    ]
    if not values:
        return None
    return max(values) if maximize else min(values)


def _report(outcome: StudyOutcome) -> None:
    style = {"complete": "green", "timeout": "green", "partial": "cyan"}.get(outcome.state, "red")
    counts = outcome.trials
    console.print(
        f"\n[bold {style}]{outcome.state}[/] study {outcome.name} ({outcome.how}): "
        f"{counts['complete']} complete, {counts['pruned']} pruned, {counts['failed']} failed"
        + (f", {counts['interrupted']} interrupted" if counts["interrupted"] else "")
        + f" of {outcome.budget}"
    )
    if outcome.error:
        console.print(f"  error: {outcome.error}", markup=False)
    best = outcome.best
    if best is None:
        console.print("  no trial completed")
        return
    console.print(
        f"  best trial {best['trial']}: {fmt_number(best['value'])}  run {best['run_id']}"
    )
    for key, value in sorted(best["params"].items()):
        console.print(f"    {key} = {_fmt_param(value)}", markup=False)
    if best.get("checkpoint"):
        c = best["checkpoint"]
        console.print(f"  best checkpoint: run {c['run_id'][:12]} step {c['step']}")
    console.print(f"  hone tune show {outcome.name}")


def _fmt_param(value: Any) -> str:
    return fmt_number(value) if isinstance(value, float) else str(value)


def _short_param(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


@tune_app.command("show")
def show(
    study: str = typer.Argument(..., help="Study name."),
    json_out: bool = JSON,
) -> None:
    """A study: its best trial, every trial, parameter importances."""
    _need_optuna()
    from hone.tune.report import study_report

    report = study_report(state.tracker().db, study)
    if json_out:
        print_json(report)
        return
    config = report["config"]
    counts = report["counts"]
    console.print(f"[bold]study[/] {report['name']}  (run {report['run_id']})")
    console.print(
        f"  {config.get('recipe')} on {str(config.get('data') or '-')[:40]}: "
        f"{config.get('direction')} {config.get('metric')}, sampler {config.get('sampler')}, "
        f"pruner {config.get('pruner')}; created {fmt_time(report['created_at'])}"
    )
    console.print(
        f"  {len(report['trials'])} trial(s) of {report['budget']}: "
        + ", ".join(f"{v} {k}" for k, v in counts.items() if v)
    )
    best = report["result"]
    if best:
        console.print(
            f"[bold]best[/] trial {best['trial']}: {fmt_number(best['value'])}  "
            f"run {best.get('run_id') or '-'}"
            + (f"  checkpoint step {best['checkpoint']['step']}" if best.get("checkpoint") else "")
        )
    names = sorted({k for t in report["trials"] for k in t["params"]})
    table = Table(title="trials")
    # What must stay whole in a narrow terminal keeps its width; params and the run shrink.
    for column in ("#", "state", "value", *names, "time", "pruned at", "run"):
        table.add_column(
            column,
            no_wrap=True,
            min_width=2 if column == "#" else 6 if column in names else None,
        )
    for t in report["trials"]:
        table.add_row(
            str(t["number"]),
            _STATE_STYLE.get(t["state"], t["state"]),
            f"{t['value']:.4g}" if t["value"] is not None else "",
            *(_short_param(t["params"][k]) if k in t["params"] else "" for k in names),
            fmt_duration(t["duration_s"]),
            _pruned_at(t["pruned_at"]),
            (t["run_id"] or "")[:8],
        )
    console.print(table)
    failed = [t for t in report["trials"] if t["state"] in ("failed", "interrupted") and t["error"]]
    for t in failed[-5:]:
        console.print(f"  trial {t['number']} {t['state']}: {t['error']}", markup=False)
    imp = report["importances"]
    if imp["values"]:
        console.print("[bold]parameter importances[/] (Optuna's PED-ANOVA)")
        for key, value in imp["values"].items():
            console.print(f"  {key:<20} {value:6.3f} {'█' * round(value * 30)}")
    else:
        console.print(f"  parameter importances: {imp['note']}")


def _pruned_at(pruned: dict[str, int] | None) -> str:
    if not pruned:
        return ""
    epoch = f" (epoch {pruned['epoch']})" if pruned.get("epoch") else ""
    return f"step {pruned['step']}{epoch}"


_STATE_STYLE = {
    "complete": "[green]complete[/]",
    "pruned": "[yellow]pruned[/]",
    "failed": "[red]failed[/]",
    "interrupted": "[red]interrupted[/]",
    "running": "[cyan]running[/]",
}


@tune_app.command("list")
def list_studies(json_out: bool = JSON) -> None:
    """Every study: its trials by state and its best value."""
    _need_optuna()
    from hone.tune.report import list_report

    found = list_report(state.tracker().db)
    if json_out:
        print_json(found)
        return
    if not found:
        console.print("no studies yet (hone tune RECIPE --data NAME@V starts one)")
        return
    table = Table(title=f"{len(found)} stud{'y' if len(found) == 1 else 'ies'}")
    for column in ("study", "recipe", "metric", "trials", "best", "created"):
        table.add_column(column)
    for s in found:
        c = s["counts"]
        best = s["result"]
        table.add_row(
            s["name"],
            str(s["config"].get("recipe")),
            f"{s['config'].get('direction', '')[:3]} {s['config'].get('metric')}",
            f"{sum(c.values())}/{s['budget']}",
            fmt_number(best["value"]) if best else "-",
            fmt_time(s["created_at"], short=True),
        )
    console.print(table)
