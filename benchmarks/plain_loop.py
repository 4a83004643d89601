"""A hand-written PyTorch loop doing what hone's standard loop does with builtin:cnn on the
digits, and nothing else: the baseline of the training benchmark. Self-contained (torch
and NumPy only), so it runs in MLflow's environment too.

    python plain_loop.py DATA.npz EPOCHS [--mlflow=TRACKING_URI] [--device=cpu|cuda]

Same model (builtin:cnn's layers for 1 x 8 x 8 inputs, built after the same seed), same
data order (NumPy's generator seeded with [seed, epoch], batches of 64, the last one
short), same optimizer (AdamW, weight decay 0.01), schedule (cosine per step), gradient
clipping (norm 1.0) and an evaluation of the test split each epoch. With ``--mlflow`` the
loss of every step is logged with ``mlflow.log_metric``. With ``--device=cuda`` it runs
as hone's loop does there: each batch gathered on the CPU and copied over, forward and
loss under bfloat16 autocast (evaluation too). Prints one RESULT line: the whole job's
seconds, and ``loop_seconds`` from the end of the first step to the end of the last (the
steady state: start-up and the first step's warm-up left out).
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
import time

import numpy as np
import torch
from torch import nn

SEED, BATCH, LR, CHANNELS, DROPOUT = 0, 64, 0.01, 32, 0.1


def model() -> nn.Module:
    torch.manual_seed(SEED)
    c = CHANNELS
    return nn.Sequential(
        nn.Conv2d(1, c, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(c, c, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(c, 2 * c, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(DROPOUT),
        nn.Linear(2 * c, 10),
    )


def _peak_mib() -> float:
    """This process's own peak RSS (VmHWM), whatever its parent's was."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _option(name: str) -> str | None:
    return next((a.split("=", 1)[1] for a in sys.argv if a.startswith(f"--{name}=")), None)


def main() -> None:
    path, epochs = sys.argv[1], int(sys.argv[2])
    tracking = _option("mlflow")
    device = torch.device(_option("device") or "cpu")
    amp = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if device.type == "cuda"
        else contextlib.nullcontext()
    )
    log = None
    if tracking is not None:
        import mlflow

        mlflow.set_tracking_uri(tracking)
        mlflow.set_experiment("plain-loop")
    start = time.perf_counter()
    data = np.load(path)
    x_train, y_train = data["x_train"], data["y_train"]
    x_test = torch.from_numpy(data["x_test"]).float().reshape(-1, 1, 8, 8).to(device)
    y_test = torch.from_numpy(data["y_test"]).long().to(device)
    net = model().to(device)
    optimizer = torch.optim.AdamW(net.parameters(), lr=LR, weight_decay=0.01)
    per_epoch = -(-len(x_train) // BATCH)
    total = epochs * per_epoch
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: 0.5 * (1.0 + math.cos(math.pi * min(1.0, s / max(total, 1))))
    )
    loss_fn = nn.CrossEntropyLoss()
    if tracking is not None:
        import mlflow

        run = mlflow.start_run()
        log = mlflow.log_metric
    step, accuracy = 0, 0.0
    first_step_end = last_step_end = 0.0
    for epoch in range(epochs):
        order = np.random.default_rng([SEED, epoch]).permutation(len(x_train))
        net.train()
        for lo in range(0, len(order), BATCH):
            rows = order[lo : lo + BATCH]
            x = torch.from_numpy(x_train[rows]).float().reshape(-1, 1, 8, 8)
            y = torch.from_numpy(y_train[rows]).long()
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with amp:
                loss = loss_fn(net(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            step += 1
            value = float(loss.detach())
            last_step_end = time.perf_counter()
            if step == 1:
                first_step_end = last_step_end
            if log is not None:
                log("train/loss", value, step=step)
        net.eval()
        with torch.no_grad(), amp:  # loss and accuracy, as hone's evaluation computes them
            out = net(x_test)
            float(loss_fn(out, y_test))
            accuracy = float((out.argmax(1) == y_test).float().mean())
    if tracking is not None:
        import mlflow

        mlflow.end_run()
        del run
    seconds = time.perf_counter() - start
    result = {
        "bench": "child",
        "seconds": seconds,
        "samples": epochs * len(x_train),
        "loop_seconds": last_step_end - first_step_end,
        "loop_samples": epochs * len(x_train) - BATCH,  # every step's but the first
        "device": device.type,
        "accuracy": accuracy,
        "peak_rss_mib": _peak_mib(),
    }
    sys.stdout.write("RESULT " + json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
