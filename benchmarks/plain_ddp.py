"""A hand-written DistributedDataParallel loop doing what hone's standard loop does with
builtin:cnn on image-shaped digits, and nothing else: the baseline of the scaling
benchmark, so that hone's scaling is read against what plain PyTorch gets on the same
cores. Self-contained (torch and NumPy only).

    torchrun --standalone --nproc-per-node=N plain_ddp.py DATA.npz EPOCHS
    python plain_ddp.py DATA.npz EPOCHS          (one process, no process group)

DATA.npz holds x_train (N, H, W), y_train, x_test, y_test. Same model as builtin:cnn
(plain_loop.py's, built after the same seed), same sharding (each epoch's order
from NumPy's generator seeded with [seed, epoch], cut to a multiple of the world size,
rank r taking every world-size-th sample), the same global batch of 64, AdamW (lr 0.01,
weight decay 0.01), cosine schedule per step, gradient clipping (norm 1.0), the loss
summed across ranks every step (as hone does, to stop all ranks at once on NaN), and the
test split evaluated every epoch (each rank its share, the sums reduced). Rank 0 prints
one RESULT line: samples/s from its first to its last step (process start and data
loading excluded, as for hone) and the ranks' peak RSS, summed.
"""

from __future__ import annotations

import json
import math
import os
import resource
import sys
import time

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from plain_loop import BATCH, LR, SEED, model  # builtin:cnn's layers, built after the seed


def evaluate(net: nn.Module, x: torch.Tensor, y: torch.Tensor, rank: int, world: int) -> float:
    """Test loss and accuracy each epoch, as hone's loop evaluates: every sample once
    across the ranks, the sums reduced."""
    net.eval()
    with torch.no_grad():
        out = net(x[rank::world])
        sums = torch.tensor(
            [
                float(nn.functional.cross_entropy(out, y[rank::world], reduction="sum")),
                float((out.argmax(1) == y[rank::world]).sum()),
                len(out),
            ],
            dtype=torch.float64,
        )
    if world > 1:
        dist.all_reduce(sums)
    return float(sums[1] / sums[2])


def main() -> None:
    path, epochs = sys.argv[1], int(sys.argv[2])
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1:
        dist.init_process_group("gloo")
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    data = np.load(path)
    x_train, y_train = data["x_train"], data["y_train"]
    height, width = x_train.shape[1:3]
    net = model()
    ddp: nn.Module = nn.parallel.DistributedDataParallel(net) if world > 1 else net
    optimizer = torch.optim.AdamW(net.parameters(), lr=LR, weight_decay=0.01)
    usable = len(x_train) - len(x_train) % world
    per_rank, batch = usable // world, BATCH // world
    total = epochs * -(-per_rank // batch)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: 0.5 * (1.0 + math.cos(math.pi * min(1.0, s / max(total, 1))))
    )
    loss_fn = nn.CrossEntropyLoss()
    x_test = torch.from_numpy(data["x_test"]).float().reshape(-1, 1, height, width)
    y_test = torch.from_numpy(data["y_test"]).long()
    stamps: list[float] = []
    accuracy = 0.0
    for epoch in range(epochs):
        order = np.random.default_rng([SEED, epoch]).permutation(len(x_train))[:usable]
        mine = order[rank::world]
        ddp.train()
        for lo in range(0, len(mine), batch):
            rows = mine[lo : lo + batch]
            x = torch.from_numpy(x_train[rows]).float().reshape(-1, 1, height, width)
            y = torch.from_numpy(y_train[rows]).long()
            loss = loss_fn(ddp(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            summed = torch.tensor(
                [float(loss.detach()) * len(rows), len(rows)], dtype=torch.float64
            )
            if world > 1:
                dist.all_reduce(summed)
            stamps.append(time.time())
        accuracy = evaluate(net, x_test, y_test, rank, world)
    peaks = [resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024]  # KiB on Linux
    if world > 1:
        every: list[object] = [None] * world
        dist.all_gather_object(every, peaks[0])
        peaks = [float(str(p)) for p in every]
    if rank == 0:
        steps = len(stamps) - 1
        elapsed = stamps[-1] - stamps[0]
        result = {
            "bench": "child",
            "samples_per_s": steps * BATCH / elapsed,
            "ms_per_step": 1000 * elapsed / steps,
            "accuracy": accuracy,
            "job_peak_rss_mib": sum(peaks),
        }
        sys.stdout.write("RESULT " + json.dumps(result) + "\n")
    if world > 1:
        dist.barrier()  # tearing down while a peer still used the group aborted in gloo
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
