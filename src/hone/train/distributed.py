"""The process group, from what torchrun puts in the environment, and the few collective
helpers a loop needs (sums, gathers, "am I rank 0").

Without a launcher (no ``WORLD_SIZE``) everything works as one process: no group is
created and the collectives return their input.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import socket
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from hone.data.torch_adapter import int_from_environment
from hone.errors import ValidationError

__all__ = [
    "Context",
    "all_gather_objects",
    "init_distributed",
    "is_main",
    "sum_across",
    "threads_per_rank",
]

#: How long a collective waits for the other ranks before the job fails.
COLLECTIVE_TIMEOUT_S = 300


@dataclass(frozen=True)
class Context:
    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    backend: str | None  # None: one process, no group
    device: torch.device
    threads: int

    @property
    def main(self) -> bool:
        return self.rank == 0


def cpu_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def threads_per_rank(local_processes: int) -> int:
    """Intra-op threads for each of ``local_processes`` ranks on this machine: what
    ``OMP_NUM_THREADS`` says when it is set (PyTorch's own convention), else the cores
    divided among the ranks, so they never oversubscribe the machine."""
    given = os.environ.get("OMP_NUM_THREADS", "").strip()
    if given:
        try:
            count = int(given)
        except ValueError:
            raise ValidationError(
                f"OMP_NUM_THREADS={given!r} in the environment is not an integer"
            ) from None
        if count >= 1:
            return count
    return max(1, cpu_cores() // max(local_processes, 1))


def init_distributed(device: str = "auto", threads: int | None = None) -> Context:
    """Join the job's process group (gloo on CPU, NCCL on CUDA) when a launcher started
    this process, pick its device, and set its intra-op threads (``threads_per_rank``)."""
    world = int_from_environment("WORLD_SIZE", 1)
    rank = int_from_environment("RANK", 0)
    local_rank = int_from_environment("LOCAL_RANK", 0)
    local_world = int_from_environment("LOCAL_WORLD_SIZE", 1)
    if world < 1 or not 0 <= rank < world or not 0 <= local_rank < max(local_world, 1):
        raise ValidationError(
            f"RANK={rank}, LOCAL_RANK={local_rank}, WORLD_SIZE={world}: not a valid process "
            "of a job; start it with torchrun or hone train"
        )
    use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    chosen = torch.device(f"cuda:{local_rank}") if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(chosen)
    count = threads or threads_per_rank(local_world)
    torch.set_num_threads(count)
    backend: str | None = None
    if world > 1:
        backend = "nccl" if use_cuda else "gloo"
        if not dist.is_initialized():
            dist.init_process_group(
                backend=backend, timeout=datetime.timedelta(seconds=COLLECTIVE_TIMEOUT_S)
            )
    return Context(rank, world, local_rank, local_world, backend, chosen, count)


def is_main() -> bool:
    """True in a single process, and on rank 0 of a distributed job."""
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def sum_across(values: torch.Tensor) -> torch.Tensor:
    """Element-wise sums over every rank (the input itself in a single process), on the
    input's device (NCCL reduces on the GPU: a CPU tensor goes there and back)."""
    if not (dist.is_available() and dist.is_initialized()):
        return values
    if dist.get_backend() == "nccl" and values.device.type != "cuda":
        reduced = values.to(torch.device("cuda", torch.cuda.current_device()))
    else:
        reduced = values.clone()
    dist.all_reduce(reduced, op=dist.ReduceOp.SUM)
    return reduced.to(values.device)


def all_gather_objects(value: Any) -> list[Any]:
    """Every rank's ``value``, in rank order (picklable values: small ones only)."""
    if not (dist.is_available() and dist.is_initialized()):
        return [value]
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, value)
    return gathered


def host_name() -> str:
    return socket.gethostname()


def shutdown(together: bool = True) -> None:
    """Leave the group: ``together`` after the work was done (a rank tearing down its
    connections while another still used them aborted in gloo now and then, "terminate
    called without an active exception"), alone when this rank failed: its peers may be
    waiting in a collective it will never join, and a barrier would hold the whole job
    for gloo's timeout (5 minutes) instead of letting them fail at once."""
    if dist.is_available() and dist.is_initialized():
        if together:
            with contextlib.suppress(Exception):  # a peer that died already: just leave
                dist.barrier()
        dist.destroy_process_group()
