"""``hone train``: check everything, create the run, start the workers through torchrun,
and end the run with what happened to the job.

The launcher owns the run. It creates it (and waits until the store has it) before any
worker starts, so workers only ever attach; rank 0 logs, the others do not touch it. The
run ends ``finished`` when torchrun reports success, ``failed`` with the error when the job
failed (a fault of its own is recorded by rank 0, so it is not retried), and ``killed``
when the launcher is interrupted. On several machines, the launcher of node rank 0 owns
the run; the others only run workers, which learn the run from rank 0's node.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from hone.errors import HoneError, UserError
from hone.tracking.entities import RunStatus
from hone.tracking.journal import runs_written_now
from hone.tracking.queries import get_run
from hone.tracking.run import ActiveRun
from hone.tracking.start import start_run
from hone.tracking.tracker import get_tracker
from hone.tracking.validation import check_name
from hone.train.distributed import threads_per_rank
from hone.train.job import Hook, Job
from hone.train.loop import (
    DONE_TAG,
    ERROR_TAG,
    FATAL,
    RESUMED_TAG,
    train_in_process,
    validation_split,
)
from hone.train.prepare import Prepared, prepare
from hone.train.recipes import one_line
from hone.train.topology import (
    Topology,
    check_gpus,
    check_host_speaks_rendezvous,
    check_port_free,
    torchrun_command,
)

# Prepared, prepare and Topology are re-exported: the launcher's callers import them here.
__all__ = [
    "Hook",
    "Outcome",
    "Prepared",
    "Topology",
    "check_names",
    "launch",
    "prepare",
    "stop_with_parent",
]

log = logging.getLogger("hone.train")

#: Linux's prctl option: a signal for this process when its parent dies.
PR_SET_PDEATHSIG = 1
#: What the run records of the job beside the recipe's params.
JOB_PARAMS = ("recipe", "data")


@dataclass
class Outcome:
    run_id: str
    status: RunStatus
    error: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)


Progress = Callable[[str], None]


def launch(
    job: Prepared,
    topology: Topology,
    *,
    experiment: str = "train",
    name: str | None = None,
    resume: str | None = None,
    on_start: Progress | None = None,
    parent: str | None = None,
    tags: Mapping[str, str] | None = None,
    hook: Hook | None = None,
    on_trained: Callable[[], None] | None = None,
) -> Outcome:
    """Run the job. Node rank 0 creates (or, with ``resume``, reopens) the run; ``on_start``
    hears its id before training begins. A new run may be the child of ``parent`` and carry
    ``tags``; ``hook`` is called by rank 0 at the end of every epoch (see ``Job.hook``);
    ``on_trained()`` the moment training is over, however it went (not when interrupted),
    before the run is ended (a caller that must not lose the outcome to a signal)."""
    topology.check()
    check_names(experiment, name)
    check_gpus(topology)
    if topology.nnodes > 1 and topology.node_rank == 0:
        check_port_free(topology)  # before the run exists: a busy port leaves nothing behind
    elif topology.nnodes > 1:
        check_host_speaks_rendezvous(topology)
    run: ActiveRun | None = None
    if topology.node_rank == 0:
        run = _open_run(job, experiment, name, resume, parent, tags)
        if on_start is not None:
            on_start(run.id)
    try:
        if topology.in_process:
            assert run is not None
            return _in_process(job, run, hook, on_trained or _nothing)
        return _through_torchrun(job, topology, run, hook, on_trained or _nothing)
    except BaseException:
        if run is not None and not run.ended:
            run.end(RunStatus.FAILED)
        raise


def check_names(experiment: str, name: str | None) -> None:
    """The run's names, checked before anything starts (the CLI calls it before prepare)."""
    check_name(experiment, "experiment")
    if name is not None:
        check_name(name, "run")


def _open_run(
    job: Prepared,
    experiment: str,
    name: str | None,
    resume: str | None,
    parent: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> ActiveRun:
    if resume is not None:
        _check_resumable(job, resume)
        run = start_run(run_id=resume, workspace=job.workspace)
        if not run._owner:
            run.end()
            raise UserError(
                f"run {run.id} is still running: another hone train owns it (if that "
                "process died without ending it, wait for its journal to be synced or "
                "end it first)"
            )
        # What the last attempt left ("" clears a tag): this attempt records its own.
        run.set_tags({ERROR_TAG: "", DONE_TAG: "", RESUMED_TAG: ""})
    else:
        run = start_run(
            experiment,
            name or f"{_short_name(job.recipe.ref)}-{job.version.name}",
            params=job.run_params,
            tags={"hone.kind": "train", **(tags or {})},
            parent=parent,
            workspace=job.workspace,
        )
        source = job.recipe.source()
        if source is not None:  # what the recipe was when it trained, whatever it becomes
            run.log_text(source[1], f"recipe/{source[0]}")
    run.log_input(job.version, job.params.train_split)
    evaluated = validation_split(job.params, job.spec)
    if evaluated is not None:
        run.log_input(job.version, evaluated)
    with run.lock:
        run.flush()  # the workers attach to it: it must be in the store before they start
    return run


def _short_name(ref: str) -> str:
    """A recipe's name in a run's default name: cnn, Model, my_recipe (not its path)."""
    where, _, attr = ref.rpartition(":") if ":" in ref else (ref, "", "")
    if attr:
        return attr.rsplit(".", 1)[-1]
    return Path(where).stem if where.endswith(".py") else where.rsplit(".", 1)[-1]


def _check_resumable(job: Prepared, resume: str) -> None:
    """A finished run has nothing to continue, and a run whose workers still live on this
    machine (their launcher was killed a moment ago) must not get a second set of them."""
    tracker = get_tracker(job.workspace)
    found = get_run(tracker.db, resume)
    if found.status is RunStatus.FINISHED:
        raise UserError(
            f"run {found.id} finished: there is nothing to resume (to train longer, start a "
            "new run, e.g. with -p epochs=N)"
        )
    if found.id in runs_written_now(job.workspace.journal_dir):
        raise UserError(
            f"run {found.id} is still being written by a living process on this machine "
            "(its workers are still running or stopping); wait until they exit, then resume"
        )


def _nothing() -> None:
    return None


def _in_process(
    job: Prepared, run: ActiveRun, hook: Hook | None, trained: Callable[[], None]
) -> Outcome:
    previous = None
    if threading.current_thread() is threading.main_thread():
        # SIGTERM ends the run as Ctrl-C does (killed), instead of leaving it running.
        previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        metrics = train_in_process(_job(job, run.id, 0, hook), run)
        trained()
    except FATAL as exc:
        trained()
        run.end(RunStatus.FAILED)
        return Outcome(run.id, RunStatus.FAILED, str(exc))
    except HoneError as exc:  # the store or the blobs failed: said as the CLI says it
        run.set_tag(ERROR_TAG, str(exc)[:4000])
        raise
    except (Exception, SystemExit) as exc:  # the recipe's code (sys.exit too), or PyTorch
        trained()
        error = f"training failed: {one_line(exc)}"
        run.set_tag(ERROR_TAG, error[:4000])
        run.end(RunStatus.FAILED)
        return Outcome(run.id, RunStatus.FAILED, error)
    except KeyboardInterrupt:
        run.end(RunStatus.KILLED)
        return Outcome(run.id, RunStatus.KILLED, "interrupted")
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    run.end(RunStatus.FINISHED)
    return Outcome(run.id, RunStatus.FINISHED, None, metrics)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _job(job: Prepared, run_id: str, threads: int, hook: Hook | None = None) -> Job:
    return Job(
        recipe=job.recipe.ref,
        data=f"{job.version.name}@{job.version.id}",
        params=dict(job.params),
        workspace=str(job.workspace.home),
        run_id=run_id,
        threads=threads,
        hook=hook.target if hook is not None else "",
        hook_config=dict(hook.config) if hook is not None else {},
    )


def _through_torchrun(
    job: Prepared,
    topology: Topology,
    run: ActiveRun | None,
    hook: Hook | None,
    trained: Callable[[], None],
) -> Outcome:
    threads = threads_per_rank(topology.nproc_per_node)
    env = dict(os.environ)
    env.update(
        HONE_TRAIN_JOB=_job(job, run.id if run else "", threads, hook).to_json(),
        OMP_NUM_THREADS=str(threads),
        PYTHONUNBUFFERED="1",
        # The workers' group gets a store of its own for each restart: on the rendezvous's
        # shared store a restarted group read the dead group's addresses and never
        # connected (pytorch/pytorch#135712, still so with gloo in 2.13).
        TORCH_DISABLE_SHARE_RDZV_TCP_STORE="1",
    )
    process = subprocess.Popen(
        torchrun_command(topology),
        env=env,
        start_new_session=True,  # Ctrl-C reaches the launcher only; it stops the group
        preexec_fn=stop_with_parent(),
    )
    interrupted = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        interrupted.set()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)  # torchrun passes it to its workers

    previous = (
        {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        if threading.current_thread() is threading.main_thread()
        else {}  # Python lets only the main thread handle signals
    )
    try:
        code = process.wait()
        if not interrupted.is_set():
            trained()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if run is None:  # another node owns the run
        if code:
            return Outcome("", RunStatus.FAILED, f"this node's workers failed (exit {code})")
        return Outcome("", RunStatus.FINISHED)
    run._tracker.sync()  # what a killed worker journaled, before the run's end is decided
    recorded = get_run(run._tracker.db, run.id)
    error = recorded.tags.get(ERROR_TAG)
    if interrupted.is_set():
        status, error = RunStatus.KILLED, "interrupted"
    elif error:
        status = RunStatus.FAILED
    elif recorded.tags.get(DONE_TAG):
        if code:  # every rank finished training, one failed on the way out
            log.warning(
                "hone: every worker finished training, but torchrun exited with %d while "
                "they were leaving; the run is complete",
                code,
            )
        status = RunStatus.FINISHED
    else:  # the workers stopped before rank 0 recorded that every rank had finished
        status = RunStatus.FAILED
        error = (
            _failure(topology, code, recorded)
            if code
            else "the workers stopped before training finished: see the log above"
        )
        run.set_tag(ERROR_TAG, error)
    run.end(status)
    metrics = {k: m.value for k, m in recorded.metrics.items()}
    return Outcome(run.id, status, error or None, metrics)


def stop_with_parent() -> Callable[[], None] | None:
    """What a child process runs before it starts (``preexec_fn``): ask Linux to send it
    SIGTERM when this process dies, however it dies (kill -9 included), so that torchrun
    stops its workers (or a study's worker its trial) instead of going on unowned in a
    session of its own."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved here: the child only calls
    launcher = os.getpid()

    def arm() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != launcher:  # the launcher died before the line above
            os.kill(os.getpid(), signal.SIGTERM)

    return arm


def _failure(topology: Topology, code: int, recorded: Any) -> str:
    if topology.nnodes > 1 and recorded is not None and "world_size" not in recorded.params:
        return (
            f"the job never started training (torchrun exit {code}): not all {topology.nnodes} "
            f"nodes joined the rendezvous at {topology.rdzv_endpoint} within "
            f"{topology.join_timeout} s, or a worker failed while starting (see the log above)"
        )
    restarts = f" after {topology.max_restarts} restart(s)" if topology.max_restarts else ""
    return f"a worker failed{restarts} (torchrun exit {code}): see the log above"
