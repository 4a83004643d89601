"""Where hone's standard loop spends the time that plain_loop.py does not: in one process
(so start-up, imports and the machine's drift between processes drop out), hone's loop
with parts of its per-epoch checkpoint switched off, alternated with the plain loop.

    python benchmarks/loop_ablation.py WORKDIR [EPOCHS] [VARIANTS] [ROUNDS]

VARIANTS (comma-separated; default all): ``plain``; ``full`` (hone as it ships);
``no-checkpoint`` (no save at all); ``copy-only`` (the state copied, nothing written);
``serialize-only`` (copied and serialized on the writer's thread, nothing stored);
``no-fsync`` (stored, ``os.fsync`` a no-op); ``switch-0.5ms`` (full, with the
interpreter's thread switch interval at 0.5 ms instead of 5). The figure is the steady
state, the end of the first step to the end of the last, as bench_train.py's. A
diagnostic, not one of the recorded benchmarks: every variant shares one process, so
there is no per-variant peak memory to report. Runs on CUDA where PyTorch sees it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

import bench_train
import hone
import hone.data
import hone.train
import hone.train.checkpoint as checkpoint
import hone.train.loop as loop
import plain_loop
from hone.store.database import database_for
from hone.tracking.queries import metric_history

VARIANTS = (
    "plain",
    "full",
    "no-checkpoint",
    "copy-only",
    "serialize-only",
    "no-fsync",
    "switch-0.5ms",
)


def main() -> None:
    work = Path(sys.argv[1])
    work.mkdir(parents=True, exist_ok=True)
    epochs = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    variants = sys.argv[3].split(",") if len(sys.argv) > 3 else list(VARIANTS)
    rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        raise SystemExit(f"no such variant {', '.join(unknown)} (one of {', '.join(VARIANTS)})")
    ws, ref, _ = bench_train._workspace(work)
    data = bench_train._export(ws, ref, work / "digits.npz")  # as plain_loop.py reads it
    device = "cuda" if torch.cuda.is_available() else "cpu"

    def plain() -> float:
        out = io.StringIO()
        sys.argv[1:] = [str(data), str(epochs), f"--device={device}"]
        with contextlib.redirect_stdout(out):
            plain_loop.main()
        return float(json.loads(out.getvalue().split("RESULT ", 1)[1])["loop_seconds"])

    def hone_side(variant: str) -> float:
        with _variant(variant):
            outcome = hone.train.train(
                "builtin:cnn", ref, params={"epochs": epochs, "lr": 0.01}, workspace=ws
            )
        assert outcome.status.value == "finished", outcome.error
        points = metric_history(database_for(ws.store_uri), outcome.run_id, "train/loss")
        return points[-1].timestamp - points[0].timestamp

    seconds: dict[str, list[float]] = {v: [] for v in variants}
    for r in range(rounds):
        for variant in variants[r % len(variants) :] + variants[: r % len(variants)]:
            value = plain() if variant == "plain" else hone_side(variant)
            seconds[variant].append(value)
            print(f"round {r + 1} {variant:15s} {value:.3f} s", flush=True)
    print(f"steady state, {epochs} epochs on {device}, median [min-max] of {rounds} rounds:")
    for variant, values in seconds.items():
        print(
            f"  {variant:15s} {statistics.median(values):.3f} s "
            f"[{min(values):.3f}-{max(values):.3f}]"
        )


@contextlib.contextmanager
def _variant(name: str) -> Any:
    """hone's loop with one part switched off (put back afterwards)."""
    patches: list[tuple[Any, str, Any]] = []
    off: Callable[..., None] = lambda *args, **kwargs: None  # noqa: E731
    if name == "no-checkpoint":
        patches.append((loop._Trainer, "_save", off))
    elif name == "copy-only":
        patches.append((checkpoint._Snapshot, "write", off))
    elif name == "serialize-only":
        patches.append((checkpoint._Snapshot, "write", checkpoint._Snapshot.serialize))
    elif name == "no-fsync":
        patches.append((os, "fsync", off))
    saved = [(owner, attr, getattr(owner, attr)) for owner, attr, _ in patches]
    interval = sys.getswitchinterval()
    try:
        for owner, attr, value in patches:
            setattr(owner, attr, value)
        if name == "switch-0.5ms":
            sys.setswitchinterval(0.0005)
        yield
    finally:
        for owner, attr, value in saved:
            setattr(owner, attr, value)
        sys.setswitchinterval(interval)


if __name__ == "__main__":
    main()
