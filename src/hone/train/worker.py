"""A training job's worker process, as torchrun starts it: ``python -m hone.train.worker``
with the job in ``HONE_TRAIN_JOB``.

Exit status: 0 when this rank's part is done, or when the job failed for a reason of its
own (bad data, NaN loss: recorded on the run for the launcher, since restarting would meet
it again); 1 when something went wrong that a restart may cure (torchrun restarts the group
up to ``--max-restarts`` times).
"""

from __future__ import annotations

import logging
import os
import re
import sys

from hone.errors import HoneError


def main() -> int:
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    text = os.environ.get("HONE_TRAIN_JOB")
    if not text:
        print(
            "hone.train.worker: HONE_TRAIN_JOB is not set: start jobs with hone train",
            file=sys.stderr,
        )
        return 2
    _die_with_torchrun()
    from hone.train.distributed import shutdown
    from hone.train.job import Job
    from hone.train.loop import FATAL, train_in_process

    rank = os.environ.get("RANK", "0")
    try:
        train_in_process(Job.from_json(text))
    except FATAL as exc:
        print(f"hone train (rank {rank}): {exc}", file=sys.stderr)
        shutdown(together=False)
        return 0
    except HoneError as exc:
        print(f"hone train (rank {rank}): {exc}", file=sys.stderr)
        shutdown(together=False)
        return 1
    except BaseException as exc:
        shutdown(together=False)
        lost = _peer_lost(exc)
        if lost is None:
            raise  # the recipe's error, or PyTorch's: its traceback is the diagnosis
        # A peer died (its own log says why): this rank's traceback would point at the
        # all-reduce it was waiting in, and read as a second, unrelated failure.
        print(
            f"hone train (rank {rank}): lost contact with the job's other processes (one "
            f"of them stopped; its own output says why), so this one stops too: {lost}",
            file=sys.stderr,
        )
        return 1
    shutdown()
    return 0


#: What gloo and NCCL say when a peer's end of the connection goes away.
_PEER_GONE = re.compile(
    r"Connection (reset|closed) by peer|Broken pipe|NCCL communicator was aborted"
)


def _peer_lost(exc: BaseException) -> str | None:
    """A collective's error when it says that a peer's connection went away, else None.
    By its words only: NCCL's and the store's other errors (a duplicate GPU, a bad
    address, this rank's own CUDA fault) keep their traceback."""
    text = str(exc).strip()
    if not isinstance(exc, RuntimeError) or not _PEER_GONE.search(text):
        return None
    text = re.sub(r"^\[[^\]]*\]\s*", "", text)  # gloo's [file.cc:line] prefix
    return text.split(". This is typically")[0]


def _die_with_torchrun() -> None:
    """torchrun stops its workers when it is stopped; when it is killed outright it
    cannot, and Linux does it instead (a worker must never train on without its group)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    parent = os.getppid()
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # torchrun died before the line above
        os._exit(1)


if __name__ == "__main__":
    sys.exit(main())
