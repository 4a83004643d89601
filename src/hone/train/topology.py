"""Where a training job's processes run: how many, on which machines, how they meet
(torchrun's c10d rendezvous, hosted by node rank 0), and torchrun's command line for it.
Every flag is checked here, before any process starts."""

from __future__ import annotations

import ipaddress
import socket
import subprocess
import sys
from dataclasses import dataclass

from hone.errors import UserError, ValidationError

__all__ = [
    "Topology",
    "check_host_speaks_rendezvous",
    "check_port_free",
    "endpoint",
    "torchrun_command",
]


@dataclass(frozen=True)
class Topology:
    """How many processes, on how many machines, and how to recover."""

    nproc_per_node: int = 1
    nnodes: int = 1
    node_rank: int = 0
    rdzv_endpoint: str | None = None  # HOST:PORT on node rank 0
    rdzv_id: str = ""
    local_addr: str | None = None  # the address other nodes reach this one at
    max_restarts: int = 0
    join_timeout: int = 300  # seconds to wait for every node to join

    @property
    def world_size(self) -> int:
        return self.nproc_per_node * self.nnodes

    @property
    def in_process(self) -> bool:
        """One process and nothing to restart: train right here, no launcher needed."""
        return self.world_size == 1 and self.max_restarts == 0

    def check(self) -> None:
        for name, value, low in (
            ("--nproc-per-node", self.nproc_per_node, 1),
            ("--nnodes", self.nnodes, 1),
            ("--node-rank", self.node_rank, 0),
            ("--max-restarts", self.max_restarts, 0),
            ("--join-timeout", self.join_timeout, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValidationError(f"{name} {value!r}: give an integer of at least {low}")
        if self.nproc_per_node > 1024 or self.nnodes > 4096:
            raise ValidationError("--nproc-per-node is at most 1024, --nnodes at most 4096")
        if self.node_rank >= self.nnodes:
            raise ValidationError(
                f"--node-rank {self.node_rank}: the nodes are numbered 0 to {self.nnodes - 1}"
            )
        if self.nnodes > 1:
            if not self.rdzv_endpoint:
                raise ValidationError(
                    f"--nnodes {self.nnodes} needs --rdzv-endpoint HOST:PORT (node rank 0's "
                    "address, the same on every node)"
                )
            endpoint(self.rdzv_endpoint)
        if self.local_addr is not None:
            _check_host(self.local_addr, "--local-addr")
        if self.rdzv_id and not all(c.isalnum() or c in "-_." for c in self.rdzv_id):
            raise ValidationError(f"--rdzv-id {self.rdzv_id!r}: use letters, digits, - _ .")


def endpoint(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValidationError(
            f"--rdzv-endpoint {text!r}: give HOST:PORT, e.g. 10.0.0.1:29400 (node rank 0)"
        )
    _check_host(host.strip("[]"), "--rdzv-endpoint")
    return host.strip("[]"), int(port)


def _check_host(host: str, what: str) -> None:
    try:
        ipaddress.ip_address(host)
        return
    except ValueError:
        pass
    if not host or len(host) > 253 or not all(c.isalnum() or c in "-." for c in host):
        raise ValidationError(f"{what} {host!r}: not an address or host name")


def torchrun_command(topology: Topology) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc-per-node={topology.nproc_per_node}",
        f"--max-restarts={topology.max_restarts}",
        "--monitor-interval=0.5",
    ]
    if topology.nnodes == 1:
        command.append("--standalone")
    else:
        assert topology.rdzv_endpoint is not None
        is_host = 1 if topology.node_rank == 0 else 0
        command += [
            f"--nnodes={topology.nnodes}",
            "--rdzv-backend=c10d",
            f"--rdzv-endpoint={topology.rdzv_endpoint}",
            f"--rdzv-id={topology.rdzv_id or 'hone-' + topology.rdzv_endpoint.replace(':', '-')}",
            # read_timeout: how long a node that is not the host waits to reach it.
            f"--rdzv-conf=is_host={is_host},join_timeout={topology.join_timeout},"
            f"read_timeout={topology.join_timeout}",
        ]
        if topology.local_addr:
            command.append(f"--local-addr={topology.local_addr}")
    return [*command, "-m", "hone.train.worker"]


#: Connects to a c10d store as torchrun's agents do, in a process of its own: PyTorch's
#: client logs every retry's C++ stack, and against a server that accepts but never answers
#: it can wait past its own timeout.
_PROBE = """
import datetime, sys
from torch._C._distributed_c10d import TCPStore
try:
    TCPStore(sys.argv[1], int(sys.argv[2]), is_master=False,
             timeout=datetime.timedelta(seconds=3))
except Exception as exc:
    print(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    sys.exit(3)
"""
PROBE_S = 10


def check_host_speaks_rendezvous(topology: Topology) -> None:
    """On a node other than 0: if something listens at the endpoint, it must be torchrun's
    rendezvous store (a wrong port, say a database's, would end in torchrun's traceback
    wall). Nothing listening yet is fine: node 0 may start later, and torchrun waits
    --join-timeout for it."""
    assert topology.rdzv_endpoint is not None
    host, port = endpoint(topology.rdzv_endpoint)
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError:
        return
    try:
        done = subprocess.run(
            [sys.executable, "-c", _PROBE, host, str(port)],
            capture_output=True,
            text=True,
            timeout=PROBE_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        reason = f"it accepts connections but does not answer within {PROBE_S} s"
    else:
        if done.returncode == 0:
            return
        reason = done.stdout.strip() or f"the probe exited with {done.returncode}"
    raise UserError(
        f"--rdzv-endpoint {topology.rdzv_endpoint}: something listens there, but not "
        f"torchrun's rendezvous ({reason}); give node rank 0's address and the port its "
        "hone train hosts the rendezvous on"
    )


def check_port_free(topology: Topology) -> None:
    assert topology.rdzv_endpoint is not None
    host, port = endpoint(topology.rdzv_endpoint)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise UserError(
                f"--rdzv-endpoint {topology.rdzv_endpoint}: cannot listen there ({exc.strerror}); "
                "the port is in use, or the address is not this machine's (node rank 0 "
                "hosts the rendezvous)"
            ) from None


def check_gpus(topology: Topology) -> None:
    """On a machine with GPUs each local process takes one (``cuda:LOCAL_RANK``): more
    processes than GPUs would fail in every worker, after the run had started."""
    import torch

    if not torch.cuda.is_available():
        return
    count = torch.cuda.device_count()
    if topology.nproc_per_node > count:
        raise ValidationError(
            f"--nproc-per-node {topology.nproc_per_node}: this machine has {count} GPU(s) "
            f"and each process takes one; use --nproc-per-node {count} or fewer (or hide the "
            "GPUs with CUDA_VISIBLE_DEVICES= to train on the CPU)"
        )
