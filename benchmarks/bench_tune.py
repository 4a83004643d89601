"""Tuning benchmarks; prints RESULT lines (run_all.py collects them).

    python benchmarks/bench_tune.py WORKDIR [--quick] [--only=NAME] [--pairs=N]

1. ``tune_trial_cost``: 200 trivial trials (the objective suggests one float and returns
   at once) with the same TPE sampler (seed 0, constant liar: what hone uses) through
   ``hone.tune.optimize`` on the default workspace (SQLite + local files; each trial a
   child run with its param and value) against plain Optuna on in-memory storage, on its
   RDB storage over SQLite, and on its journal file. Each side a fresh process, the sides
   interleaved, the order rotating. Figures: milliseconds per trial (the optimize call:
   study creation and every trial; imports and the workspace's creation left out),
   median [range], and the process's peak RSS.
2. ``tune_digits``: the digits CNN (builtin:cnn's search space on the normalized digits,
   split train/validation/test), 20 trials, one at a time: TPE + ASHA pruning against
   random search without pruning, same budget and seed each round (the seed changes
   between rounds). Figures: the best trial's validation accuracy, the chosen model's (the
   best trial's best checkpoint) accuracy on the test split no trial saw, and the wall time
   of the whole study, median [range]; ratios of wall times per round.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import rss
import trials
from workloads import Sizes, emit, option, run_selected

HERE = Path(__file__).resolve().parent
COST_SIDES = ("hone", "optuna_memory", "optuna_rdb_sqlite", "optuna_journal")
DIGITS_SIDES = ("tpe_asha", "random_none")


def _child(workdir: Path, *args: str) -> list[str]:
    return [sys.executable, str(HERE / "bench_tune.py"), str(workdir), *args]


def tune_trial_cost(workdir: Path, sizes: Sizes) -> None:
    count = 20 if sizes.pairs == 1 else 200
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    sides: dict[str, Callable[[int], trials.Trial]] = {
        side: (
            lambda r, side=side: trials.spawn(  # type: ignore[misc]
                _child(
                    workdir / f"cost-{side}-{r}",
                    "--child=cost",
                    f"--side={side}",
                    f"--trials={count}",
                ),
                side,
                HERE,
                env=env,
            )
        )
        for side in COST_SIDES
    }
    rounds = trials.interleaved(sides, sizes.cheap_pairs, "trial cost")

    def per_trial(t: trials.Trial) -> float:
        return 1000 * float(t.results["child"]["seconds"]) / count

    out: dict[str, Any] = {"bench": "tune_trial_cost", "trials": count, "sides": {}}
    for side in sides:
        out["sides"][side] = {
            "ms_per_trial": trials.side_spread(rounds, side, per_trial),
            "peak_rss_mib": trials.side_spread(
                rounds, side, lambda t: float(t.results["child"]["peak_rss_mib"])
            ),
        }

    def ratio_to(other: str) -> Callable[[dict[str, trials.Trial]], float]:
        return lambda r: per_trial(r["hone"]) / per_trial(r[other])

    for side in COST_SIDES[1:]:
        out[f"ratio_to_{side}"] = trials.pair_ratios(rounds, ratio_to(side))
    emit(out)


def tune_digits(workdir: Path, sizes: Sizes) -> None:
    import hone
    import hone.data

    ws = hone.init(workdir / "digits-ws")
    # validation: what the studies select on; test: what the chosen model is measured on.
    raw = hone.data.import_dataset(
        "digits",
        "sklearn:digits",
        split="train=0.7,validation=0.15,test=0.15",
        stratify=True,
        workspace=ws,
    )
    data = hone.data.normalize(raw)
    ref = f"{data.name}@{data.id}"
    count = 4 if sizes.pairs == 1 else 20
    epochs = 2 if sizes.pairs == 1 else 12
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    sides: dict[str, Callable[[int], trials.Trial]] = {
        side: (
            lambda r, side=side: trials.spawn(  # type: ignore[misc]
                _child(
                    workdir,
                    "--child=digits",
                    f"--side={side}",
                    f"--ws={ws.home}",
                    f"--ref={ref}",
                    f"--trials={count}",
                    f"--epochs={epochs}",
                    f"--seed={r}",
                ),
                side,
                HERE,
                env=env,
            )
        )
        for side in DIGITS_SIDES
    }
    rounds = trials.interleaved(sides, sizes.pairs, "digits study")

    def child(t: trials.Trial) -> dict[str, Any]:
        result: dict[str, Any] = t.results["child"]
        return result

    out: dict[str, Any] = {
        "bench": "tune_digits",
        "trials": count,
        "epochs": epochs,
        "sides": {},
    }
    for side in sides:
        out["sides"][side] = {
            "best_val_acc": trials.side_spread(rounds, side, lambda t: child(t)["best"]),
            "chosen_test_acc": trials.side_spread(rounds, side, lambda t: child(t)["test"]),
            "wall_s": trials.side_spread(rounds, side, lambda t: child(t)["seconds"]),
            "pruned": trials.side_spread(rounds, side, lambda t: child(t)["pruned"]),
            "epochs_trained": trials.side_spread(rounds, side, lambda t: child(t)["epochs"]),
            "peak_rss_mib": trials.side_spread(rounds, side, lambda t: child(t)["peak_rss_mib"]),
        }
    out["wall_ratio"] = trials.pair_ratios(
        rounds, lambda r: child(r["tpe_asha"])["seconds"] / child(r["random_none"])["seconds"]
    )
    out["accuracy_gap_points"] = trials.pair_ratios(
        rounds, lambda r: 100 * (child(r["tpe_asha"])["best"] - child(r["random_none"])["best"])
    )
    out["test_gap_points"] = trials.pair_ratios(
        rounds, lambda r: 100 * (child(r["tpe_asha"])["test"] - child(r["random_none"])["test"])
    )
    emit(out)


# Children ---------------------------------------------------------------------------


def _quadratic(trial: Any) -> float:
    x = trial.suggest_float("x", -10, 10)
    return float((x - 2) ** 2)


def cost_child(workdir: Path) -> None:
    import optuna

    side, count = option("side"), int(option("trials", "200") or 200)
    workdir.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.ERROR)

    def sampler() -> optuna.samplers.BaseSampler:
        return optuna.samplers.TPESampler(seed=0, constant_liar=True)

    if side == "hone":
        import hone
        from hone.tune import optimize

        ws = hone.init(workdir / "ws")
        started = time.perf_counter()
        out = optimize(
            _quadratic, n_trials=count, study="cost", direction="minimize", seed=0,
            workspace=ws,
        )  # fmt: skip
        seconds = time.perf_counter() - started
        done = out.trials["complete"]
    else:
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        storage: Any = None  # optuna_memory
        if side == "optuna_rdb_sqlite":
            storage = f"sqlite:///{workdir / 'optuna.db'}"
        elif side == "optuna_journal":
            storage = JournalStorage(JournalFileBackend(str(workdir / "journal.log")))
        started = time.perf_counter()
        study = optuna.create_study(
            study_name="cost", storage=storage, direction="minimize", sampler=sampler()
        )
        study.optimize(_quadratic, n_trials=count)
        seconds = time.perf_counter() - started
        done = len(study.trials)
    if done != count:
        raise SystemExit(f"{side}: {done} trials completed, not {count}")
    emit({"bench": "child", "seconds": seconds, "peak_rss_mib": rss.peak_mib()})


def digits_child(workdir: Path) -> None:
    import hone
    from hone.tune import tune

    side = option("side")
    sampler, pruner = ("tpe", "asha") if side == "tpe_asha" else ("random", "none")
    ws = hone.init(option("ws"))
    seed = int(option("seed", "0") or 0)
    started = time.perf_counter()
    out = tune(
        "builtin:cnn",
        str(option("ref")),
        trials=int(option("trials", "20") or 20),
        sampler=sampler,
        pruner=pruner,
        seed=seed,
        study=f"{side}-{seed}-{time.time_ns()}",
        params={"epochs": int(option("epochs", "12") or 12)},
        workspace=ws,
    )
    seconds = time.perf_counter() - started
    if out.best is None or out.state != "complete":
        raise SystemExit(f"{side}: the study ended {out.state}: {out.error}")
    epochs = 0
    for run in hone.search_runs(
        workspace=ws, filter=f"tags.`hone.study` = '{out.name}'", max_results=1000
    ):
        if "epoch" in run.metrics and run.tags.get("hone.kind") == "train":
            epochs += int(run.metrics["epoch"].value)
    emit(
        {
            "bench": "child",
            "seconds": seconds,
            "best": float(out.best["value"]),
            "test": _test_accuracy(ws, str(option("ref")), out.best),
            "pruned": out.trials["pruned"],
            "epochs": epochs,
            "peak_rss_mib": rss.peak_mib(),
        }
    )


def _test_accuracy(ws: Any, ref: str, best: dict[str, Any]) -> float:
    """The study's chosen model (its best trial's best checkpoint) on the test split, which
    no trial saw: the best validation score of many trials is biased upward (the more
    trials complete, the more), this is not."""
    import numpy as np
    import torch
    from safetensors.torch import load as load_weights

    import hone.data
    from hone.blobs import open_blob_store
    from hone.train.launch import prepare

    job = prepare("builtin:cnn", ref, dict(best["params"]), workspace=ws)
    model = job.recipe.model(job.params, job.spec)
    weights = open_blob_store(ws.blob_uri).get_bytes(best["checkpoint"]["weights"])
    model.load_state_dict(load_weights(weights))
    model.eval()
    x, y = hone.data.get(ref, workspace=ws).to_numpy("test")
    assert y is not None and job.spec.classes is not None
    target = np.searchsorted(np.asarray(job.spec.classes), y)
    with torch.no_grad():
        predicted = model(torch.from_numpy(np.ascontiguousarray(x))).argmax(1).numpy()
    return float((predicted == target).mean())


def main() -> None:
    child = option("child")
    if child == "cost":
        cost_child(Path(sys.argv[1]))
        return
    if child == "digits":
        digits_child(Path(sys.argv[1]))
        return
    run_selected({"tune_trial_cost": tune_trial_cost, "tune_digits": tune_digits})


if __name__ == "__main__":
    main()
