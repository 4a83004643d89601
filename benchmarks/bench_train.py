"""Training-engine benchmarks; prints RESULT lines (run_all.py collects them).

    python benchmarks/bench_train.py WORKDIR [--quick] [--only=NAME] [--mlflow-python=PATH]
                                    [--device=cpu|cuda] [--pairs=N]

1. ``train_loop``: the digits CNN (builtin:cnn on the normalized digits, 10 classes, batch
   64), hone's standard loop in one process (a train/loss point every step, val/loss and
   val/acc and a checkpoint every epoch, one tracked run) against plain_loop.py, the same
   model, data order, seed, optimizer, schedule, clipping and evaluation written by hand,
   and plain_loop.py logging every step with MLflow's ``log_metric``. Each trial is a fresh
   process timed from its start of work (data load) to its end (run ended); the three
   sides alternate, the order rotating, ``pairs`` rounds. Figures: samples/s and final
   accuracy, median [range]; ratios per round; beside them the steady state (the end of
   the first step to the end of the last: start-up left out). ``--device=cuda`` runs
   both sides on the GPU, bfloat16 autocast (what hone's loop picks there by itself).
2. ``train_scaling``: synchronous data parallel at the same global batch (64): 2 processes
   x 1 thread against 1 process x 1 thread (``OMP_NUM_THREADS=1``), on a compute-bound
   configuration (the digits upsampled to 24 x 24, builtin:cnn, ~60 ms a step on one
   core) and on the digits CNN (8 x 8, ~2 ms a step: communication-bound). Samples/s in
   steady state, from the first to the last train/loss point's time (process start and
   data loading excluded for both), and final accuracy.
3. ``train_restart``: 2 processes, a checkpoint every 8 steps; rank 1 SIGKILLs itself at
   step 30 of torchrun's first attempt; ``--max-restarts 1``. Seconds from the kill to the
   first step of the restarted group, and steps done twice.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import hone
import hone.data
import hone.train
import rss
import trials
from hone.store.database import database_for
from hone.tracking.queries import get_run, metric_history
from workloads import Sizes, emit, option, sizes_from_argv

HERE = Path(__file__).resolve().parent

KILLER = """
import os, signal, time, torch
from hone.train.builtin import CNN

class Killer(CNN):
    calls = 0

    def loss(self, params, data):
        ce = torch.nn.CrossEntropyLoss()

        def fn(out, y):
            if out.requires_grad:
                Killer.calls += 1
                if (
                    Killer.calls == int(os.environ["KILL_AT"])
                    and os.environ.get("RANK") == "1"
                    and os.environ.get("TORCHELASTIC_RESTART_COUNT") == "0"
                ):
                    with open(os.environ["KILL_STAMP"], "w") as fh:
                        fh.write(repr(time.time()))
                    os.kill(os.getpid(), signal.SIGKILL)
            return ce(out, y)

        return fn
"""


def _workspace(workdir: Path) -> tuple[hone.Workspace, str, str]:
    """A workspace with the normalized digits (8 x 8) and the digits upsampled to 24 x 24
    (compute-bound on one core, and near its accuracy plateau after the scaling benchmark's
    30 epochs, where accuracies can be compared: 16 x 16 is there too but scales less,
    32 x 32 scales more but is still learning)."""
    ws = hone.init(workdir / "ws")
    raw = hone.data.import_dataset(
        "digits", "sklearn:digits", split="train=0.8,test=0.2", stratify=True, workspace=ws
    )
    digits = hone.data.normalize(raw)
    from sklearn.datasets import load_digits

    bunch = load_digits()
    big = np.kron(bunch.images, np.ones((3, 3))).astype(np.float32)  # (1797, 24, 24)
    np.savez(workdir / "digits24.npz", x=big, y=bunch.target)
    raw24 = hone.data.import_dataset(
        "digits24",
        workdir / "digits24.npz",
        split="train=0.8,test=0.2",
        stratify=True,
        workspace=ws,
    )
    digits24 = hone.data.normalize(raw24)
    return ws, f"digits@{digits.id}", f"digits24@{digits24.id}"


def train_loop(workdir: Path, sizes: Sizes) -> None:
    ws, ref, _ = _workspace(workdir)
    version = hone.data.get(ref, workspace=ws)
    x_train, y_train = version.to_numpy("train")
    x_test, y_test = version.to_numpy("test")
    assert y_train is not None and y_test is not None
    data = workdir / "digits.npz"
    np.savez(data, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    epochs = str(sizes.train_epochs)
    mlflow_python = option("mlflow-python")
    device = option("device", "cpu")  # cuda: hone's loop picks the GPU (and bf16) itself
    if device not in ("cpu", "cuda"):
        raise SystemExit(f"--device={device}: give cpu or cuda")
    # On the CPU hone's side must not find a GPU to pick (on a GPU machine it would).
    hone_env = {**os.environ, **({"CUDA_VISIBLE_DEVICES": ""} if device == "cpu" else {})}
    sides: dict[str, Callable[[int], trials.Trial]] = {
        "hone": lambda r: trials.spawn(
            [
                sys.executable,
                str(HERE / "bench_train.py"),
                str(workdir),
                "--child=loop",
                f"--ws={ws.home}",
                f"--ref={ref}",
                f"--epochs={epochs}",
            ],
            "hone",
            HERE,
            env=hone_env,
        ),
        "plain": lambda r: trials.spawn(
            [sys.executable, str(HERE / "plain_loop.py"), str(data), epochs, f"--device={device}"],
            "plain",
            HERE,
        ),
    }
    if mlflow_python:
        sides["mlflow"] = lambda r: trials.spawn(
            [
                mlflow_python,
                str(HERE / "plain_loop.py"),
                str(data),
                epochs,
                f"--mlflow=sqlite:///{workdir / f'mlflow-{r}.db'}",
                f"--device={device}",
            ],
            "mlflow",
            HERE,
        )
    rounds = trials.interleaved(sides, sizes.pairs, "train loop")

    def rate(t: trials.Trial) -> float:
        child = t.results["child"]
        return float(child["samples"]) / float(child["seconds"])

    def loop_rate(t: trials.Trial) -> float:
        child = t.results["child"]
        return float(child["loop_samples"]) / float(child["loop_seconds"])

    for trial in (t for r in rounds for t in r.values()):
        ran_on = trial.results["child"].get("device", "cpu")
        if ran_on != device:
            raise SystemExit(f"train_loop: the {trial.side} side ran on {ran_on}, not {device}")
    out: dict[str, Any] = {
        "bench": "train_loop",
        "epochs": sizes.train_epochs,
        "device": device,
        "amp_dtype": rounds[0]["hone"].results["child"]["amp_dtype"],
        "sides": {},
    }
    for side in sides:
        out["sides"][side] = {
            "samples_per_s": trials.side_spread(rounds, side, rate),
            "loop_samples_per_s": trials.side_spread(rounds, side, loop_rate),
            "accuracy": trials.side_spread(
                rounds, side, lambda t: float(t.results["child"]["accuracy"])
            ),
            "peak_rss_mib": trials.side_spread(
                rounds, side, lambda t: float(t.results["child"]["peak_rss_mib"])
            ),
        }
    out["ratio"] = trials.pair_ratios(rounds, lambda r: rate(r["hone"]) / rate(r["plain"]))
    out["loop_ratio"] = trials.pair_ratios(
        rounds, lambda r: loop_rate(r["hone"]) / loop_rate(r["plain"])
    )
    out["accuracy_gap_points"] = trials.pair_ratios(
        rounds,
        lambda r: (
            100
            * abs(r["hone"].results["child"]["accuracy"] - r["plain"].results["child"]["accuracy"])
        ),
    )
    if "mlflow" in sides:
        out["mlflow_ratio"] = trials.pair_ratios(
            rounds, lambda r: rate(r["mlflow"]) / rate(r["plain"])
        )
    emit(out)


def train_scaling(workdir: Path, sizes: Sizes) -> None:
    ws, digits, digits24 = _workspace(workdir)
    out: dict[str, Any] = {"bench": "train_scaling", "epochs": sizes.scaling_epochs, "configs": {}}
    for name, ref in (("digits24", digits24), ("digits", digits)):
        data = _export(ws, ref, workdir / f"{name}.npz")
        sides = {f"{n}x1": _scaling_side(workdir, ws, ref, n, sizes.scaling_epochs) for n in (1, 2)}
        sides |= {f"plain {n}x1": _plain_side(data, n, sizes.scaling_epochs) for n in (1, 2)}
        rounds = trials.interleaved(sides, sizes.pairs, f"scaling {name}")

        def rate(t: trials.Trial) -> float:
            return float(t.results["child"]["samples_per_s"])

        def child(key: str) -> Callable[[trials.Trial], float]:
            return lambda t: float(t.results["child"][key])

        out["configs"][name] = {
            "ref": ref,
            "sides": {
                side: {
                    "samples_per_s": trials.side_spread(rounds, side, rate),
                    "ms_per_step": trials.side_spread(rounds, side, child("ms_per_step")),
                    "accuracy": trials.side_spread(rounds, side, child("accuracy")),
                    # Every process of the job: each rank's peak, plus hone's launcher.
                    "peak_rss_mib": trials.side_spread(rounds, side, child("job_peak_rss_mib")),
                }
                for side in sides
            },
            "ratio": trials.pair_ratios(rounds, lambda r: rate(r["2x1"]) / rate(r["1x1"])),
            "plain_ratio": trials.pair_ratios(
                rounds, lambda r: rate(r["plain 2x1"]) / rate(r["plain 1x1"])
            ),
            "hone_vs_plain_2x1": trials.pair_ratios(
                rounds, lambda r: rate(r["2x1"]) / rate(r["plain 2x1"])
            ),
            "accuracy_gap_points": trials.pair_ratios(
                rounds,
                lambda r: (
                    100
                    * abs(
                        r["2x1"].results["child"]["accuracy"]
                        - r["1x1"].results["child"]["accuracy"]
                    )
                ),
            ),
        }
    emit(out)


def _scaling_side(
    workdir: Path, ws: hone.Workspace, ref: str, processes: int, epochs: int
) -> Callable[[int], trials.Trial]:
    command = [
        sys.executable,
        str(HERE / "bench_train.py"),
        str(workdir),
        "--child=scale",
        f"--ws={ws.home}",
        f"--ref={ref}",
        f"--epochs={epochs}",
        f"--nproc={processes}",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}  # CPU scaling
    return lambda r: trials.spawn(command, f"{processes}x1", HERE, env=env)


def _export(ws: hone.Workspace, ref: str, path: Path) -> Path:
    """The version's train and test splits (transforms applied) for the plain loop."""
    version = hone.data.get(ref, workspace=ws)
    x_train, y_train = version.to_numpy("train")
    x_test, y_test = version.to_numpy("test")
    assert y_train is not None and y_test is not None
    side = math.isqrt(math.prod(x_train.shape[1:]))  # 8 x 8 pixels, or 24 x 24
    np.savez(
        path,
        x_train=np.asarray(x_train, dtype=np.float32).reshape(-1, side, side),
        y_train=y_train,
        x_test=np.asarray(x_test, dtype=np.float32).reshape(-1, side, side),
        y_test=y_test,
    )
    return path


def _plain_side(data: Path, processes: int, epochs: int) -> Callable[[int], trials.Trial]:
    script = [str(HERE / "plain_ddp.py"), str(data), str(epochs)]
    command = [sys.executable, *script]
    if processes > 1:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        command += [f"--nproc-per-node={processes}", *script]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    return lambda r: trials.spawn(
        command, f"plain {processes}x1", HERE, env=env, teardown_abort_ok=processes > 1
    )


def train_restart(workdir: Path, sizes: Sizes) -> None:
    ws, ref, _ = _workspace(workdir)
    recipe = workdir / "killer.py"
    recipe.write_text(KILLER)
    db = database_for(ws.store_uri)
    restart_s: list[float] = []
    redone: list[float] = []
    for trial in range(sizes.restart_trials):
        stamp = workdir / f"killed-{trial}"
        os.environ.update(KILL_AT="30", KILL_STAMP=str(stamp))
        outcome = hone.train.train(
            f"{recipe}:Killer",
            ref,
            params={"epochs": 2, "checkpoint_every": 8, "keep_last": 5},
            nproc_per_node=2,
            max_restarts=1,
            workspace=ws,
        )
        assert outcome.status.value == "finished", outcome.error
        run = get_run(db, outcome.run_id)
        resumed = int(run.tags["hone.resumed_at_step"])
        killed_at = float(stamp.read_text())
        first = next(m for m in metric_history(db, run.id, "train/loss") if m.step == resumed + 1)
        restart_s.append(first.timestamp - killed_at)
        redone.append(30 - 1 - resumed)  # steps completed before the kill, after the checkpoint
    emit(
        {
            "bench": "train_restart",
            "restart_s": trials.spread(restart_s),
            "steps_redone": trials.spread(redone),
            "checkpoint_every": 8,
        }
    )


def child() -> None:
    """One trial in this fresh process (``--child=loop|scale``)."""
    ws = hone.Workspace.discover(str(option("ws")))
    ref, epochs = str(option("ref")), int(str(option("epochs")))
    params = {"epochs": epochs, "lr": 0.01}
    if option("child") == "loop":
        start = time.perf_counter()
        outcome = hone.train.train("builtin:cnn", ref, params=params, workspace=ws)
        seconds = time.perf_counter() - start
        assert outcome.status.value == "finished", outcome.error
        rows = hone.data.get(ref, workspace=ws).splits["train"]
        db = database_for(ws.store_uri)
        # The steady state, as plain_loop.py times it: the end of the first step (its
        # train/loss point) to the end of the last.
        points = metric_history(db, outcome.run_id, "train/loss")
        run = get_run(db, outcome.run_id)
        emit(
            {
                "bench": "child",
                "seconds": seconds,
                "samples": epochs * rows,
                "loop_seconds": points[-1].timestamp - points[0].timestamp,
                "loop_samples": epochs * rows - 64,
                "device": run.params["device"],
                "amp_dtype": run.params["amp_dtype"],
                "accuracy": outcome.metrics["val/acc"],
                "peak_rss_mib": rss.peak_mib(),
            }
        )
        return
    processes = int(str(option("nproc")))
    outcome = hone.train.train(
        "builtin:cnn", ref, params=params, nproc_per_node=processes, workspace=ws
    )
    assert outcome.status.value == "finished", outcome.error
    db = database_for(ws.store_uri)
    points = metric_history(db, outcome.run_id, "train/loss")
    steps = points[-1].step - points[0].step
    elapsed = points[-1].timestamp - points[0].timestamp
    run = get_run(db, outcome.run_id)
    ranks = json.loads(run.tags["hone.rank_peak_rss_mib"])
    emit(
        {
            "bench": "child",
            "samples_per_s": steps * 64 / elapsed,
            "ms_per_step": 1000 * elapsed / steps,
            "accuracy": run.metrics["val/acc"].value,
            # In one process the rank is this process; else the ranks and this launcher.
            "job_peak_rss_mib": sum(ranks) + (rss.peak_mib() if processes > 1 else 0),
        }
    )


def main() -> None:
    if option("child"):
        child()
        return
    benches: dict[str, Callable[[Path, Sizes], None]] = {
        "train_loop": train_loop,
        "train_scaling": train_scaling,
        "train_restart": train_restart,
    }
    only = option("only")
    if only is not None and only not in benches:
        raise SystemExit(f"--only={only}: no such benchmark (one of {', '.join(benches)})")
    workdir = Path(sys.argv[1])
    sizes = sizes_from_argv()
    for name, bench in benches.items():
        if only in (None, name):
            (workdir / name).mkdir(parents=True, exist_ok=True)
            bench(workdir / name, sizes)


if __name__ == "__main__":
    main()
