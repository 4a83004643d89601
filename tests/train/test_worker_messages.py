"""What a worker says when its job's process group breaks: one line for a peer that went
away, the full traceback for anything else."""

from __future__ import annotations

import pytest
import torch.distributed as dist

from hone.train.worker import _peer_lost

GLOO_RESET = (
    "[/__w/pytorch/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:537] Read error "
    "[127.0.0.1]:1969: Connection reset by peer. This is typically caused by a remote worker "
    "hanging or bugs in the application. Check the logs of the remote worker."
)


def test_a_peer_gone_is_said_in_its_own_words() -> None:
    assert _peer_lost(RuntimeError(GLOO_RESET)) == (
        "Read error [127.0.0.1]:1969: Connection reset by peer"
    )
    closed = RuntimeError("[pair.cc:600] Connection closed by peer [127.0.0.1]:4242")
    assert _peer_lost(closed) == "Connection closed by peer [127.0.0.1]:4242"


@pytest.mark.parametrize(
    "error",
    [
        # This rank's own faults keep their traceback, even from the collectives' layer.
        dist.DistBackendError("NCCL error in: ... invalid usage\nDuplicate GPU detected"),
        dist.DistNetworkError("Socket Timeout"),
        dist.DistStoreError("Timed out after 300 seconds waiting for clients"),
        RuntimeError("mat1 and mat2 shapes cannot be multiplied (64x10 and 64x10)"),
        ValueError("Connection reset by peer"),  # not a collective's error type
        KeyboardInterrupt(),
    ],
)
def test_anything_else_keeps_its_traceback(error: BaseException) -> None:
    assert _peer_lost(error) is None
