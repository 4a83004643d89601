"""A study's ``--parallel`` worker processes on this machine (``python -m
hone.tune.worker``): started with their part of the study and their GPUs, stopped in good
order on Ctrl-C (killed after a grace period or a second Ctrl-C), and reaped when one dies
(its trials failed as interrupted, their budget given back for the others).

Cores: the machine's cores are divided among the study's processes on it, then among each
trial's ranks: a trial of ``nproc_per_node`` K in a study of ``parallel`` P gives each rank
``cores / (P * K)`` intra-op threads (``OMP_NUM_THREADS``, when set, is taken as is)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from types import FrameType

from hone.train.launch import stop_with_parent
from hone.tune import studies
from hone.tune.plan import Plan, gpu_slices
from hone.tune.study import WORKER_ATTR, OpenStudy, fail_interrupted

__all__ = ["INDEX_ENV", "JOB_ENV", "STOP_GRACE_S", "reap", "run_processes"]

log = logging.getLogger("hone.tune")

#: The environment variable a worker process reads its part of the study from.
JOB_ENV = "HONE_TUNE_JOB"
#: Seconds the workers have to stop in good order after Ctrl-C, before they are killed.
STOP_GRACE_S = 150.0
#: Which of the study's worker processes it is (1, 2, ...): its sampler's seed differs.
INDEX_ENV = "HONE_TUNE_WORKER"


def run_processes(plan: Plan, study: OpenStudy, deadline: float | None) -> str | None:
    """``parallel`` worker processes on the study; the first fatal error, if any."""
    job = {
        "workspace": str(plan.workspace.home),
        "study": study.name,
        "space": plan.space_given,
        "objective": dataclasses.asdict(plan.objective),
        "seconds": None if deadline is None else max(deadline - time.monotonic(), 0.0),
    }
    env = dict(os.environ)
    env[JOB_ENV] = json.dumps(job)
    env.setdefault("OMP_NUM_THREADS", str(_threads(plan.parallel, plan.objective.nproc_per_node)))
    env["PYTHONUNBUFFERED"] = "1"
    devices = gpu_slices(plan.parallel, plan.objective.nproc_per_node)
    procs: list[subprocess.Popen[str]] = []
    errors: list[str] = []
    interrupted = threading.Event()
    timers: list[threading.Timer] = []

    def kill(sig: int) -> None:
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, sig)

    def stop(signum: int, frame: FrameType | None) -> None:
        if interrupted.is_set():  # a second Ctrl-C: now
            kill(signal.SIGKILL)
            return
        interrupted.set()
        kill(signal.SIGTERM)  # each ends its trial as interrupted and gives its budget back
        # A worker that cannot finish that (a store that does not answer) is killed later.
        timer = threading.Timer(STOP_GRACE_S, kill, args=(signal.SIGKILL,))
        timer.daemon = True
        timer.start()
        timers.append(timer)

    # (installed before the first worker starts: a Ctrl-C at any moment stops them all)
    previous = (
        {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        if threading.current_thread() is threading.main_thread()
        else {}
    )
    readers: list[threading.Thread] = []
    codes: dict[int, int] = {}
    try:
        for index in range(plan.parallel):
            if interrupted.is_set():
                break
            proc = subprocess.Popen(
                [sys.executable, "-m", "hone.tune.worker"],
                env={
                    **env,
                    INDEX_ENV: str(index + 1),
                    **({"CUDA_VISIBLE_DEVICES": devices[index]} if devices else {}),
                },
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=True,  # Ctrl-C reaches this process, which stops them
                preexec_fn=stop_with_parent(),
            )
            procs.append(proc)
            reader = threading.Thread(target=_relay, args=(proc, errors), daemon=True)
            reader.start()
            readers.append(reader)
        while len(codes) < len(procs):
            for proc in procs:
                code = proc.poll()
                if code is None or proc.pid in codes:
                    continue
                codes[proc.pid] = code
                if code not in (0, 3, 130):
                    # It died (killed, out of memory): its trial is failed as interrupted
                    # and its budget given back at once, for the others to run.
                    reap(study, proc.pid)
                    log.warning(
                        "hone: a worker process of study %s %s; its trial was failed as "
                        "interrupted and its budget given back",
                        study.name,
                        _how_it_ended(code),
                    )
            time.sleep(0.2)
        for reader in readers:
            reader.join(timeout=5)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for timer in timers:
            timer.cancel()
        for proc in procs:
            if proc.stderr is not None:
                proc.stderr.close()
    if interrupted.is_set():
        for proc in procs:  # one killed before it could record its trial's end
            reap(study, proc.pid)
        raise KeyboardInterrupt
    if any(code == 3 for code in codes.values()):
        return errors[0] if errors else "a worker process stopped the study"
    return None


def _how_it_ended(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
    return f"failed (exit {code})"


def reap(study: OpenStudy, pid: int) -> None:
    """The trials a dead worker process of this machine left running: failed as
    interrupted, their budget given back."""
    import optuna

    workers = {
        w.worker
        for w in studies.study_workers(study.db, study.name)
        if w.host == studies.MACHINE and w.pid == pid
    }
    if not workers:
        return
    left = [
        t
        for t in study.optuna.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
        if t.system_attrs.get(WORKER_ATTR) in workers
    ]
    fail_interrupted(study, left)
    for worker in workers:
        with contextlib.suppress(Exception):
            studies.leave(study.db, study.name, worker)


def _relay(process: subprocess.Popen[str], errors: list[str]) -> None:
    """A worker's stderr, passed on; the line that says why it stopped is kept."""
    assert process.stderr is not None
    for line in process.stderr:
        if line.startswith("hone tune: "):
            errors.append(line[len("hone tune: ") :].strip())
        else:
            sys.stderr.write(line)


def _threads(parallel: int, nproc: int) -> int:
    from hone.train.distributed import cpu_cores

    return max(1, cpu_cores() // max(parallel * nproc, 1))
