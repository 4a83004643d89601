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
import ipaddress
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from hone.config import Workspace
from hone.data.api import get as get_version
from hone.data.dataset import DatasetVersion
from hone.errors import HoneError, UserError, ValidationError
from hone.tracking.entities import RunStatus
from hone.tracking.journal import runs_written_now
from hone.tracking.queries import get_run
from hone.tracking.run import ActiveRun
from hone.tracking.start import start_run
from hone.tracking.tracker import get_tracker
from hone.tracking.validation import check_name
from hone.train.distributed import threads_per_rank
from hone.train.loop import (
    DONE_TAG,
    ERROR_TAG,
    FATAL,
    RESUMED_TAG,
    Job,
    train_in_process,
    validation_split,
)
from hone.train.params import Params, declare, resolve
from hone.train.parts import build_parts, check_best_metric, logged_metrics, metric_sum
from hone.train.recipes import DataSpec, LoadedRecipe, data_spec, load_recipe, one_line

__all__ = ["Outcome", "Prepared", "Topology", "check_names", "launch", "prepare"]

log = logging.getLogger("hone.train")

#: A model of at most this many bytes of parameters is tried on two real samples before
#: launch; a bigger one on the meta device.
CHECK_ON_CPU_BYTES = 256 << 20
#: Linux's prctl option: a signal for this process when its parent dies.
PR_SET_PDEATHSIG = 1
#: What the run records of the job beside the recipe's params.
JOB_PARAMS = ("recipe", "data")


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


@dataclass
class Prepared:
    """A job checked before any process starts."""

    recipe: LoadedRecipe
    params: Params
    version: DatasetVersion
    spec: DataSpec
    workspace: Workspace

    @property
    def run_params(self) -> dict[str, Any]:
        return {"recipe": self.recipe.ref, "data": self.spec.ref, **self.params}


def prepare(
    recipe: str,
    data: str | DatasetVersion,
    overrides: Mapping[str, Any],
    *,
    world_size: int = 1,
    workspace: Workspace | None = None,
    where: str = "-p",
) -> Prepared:
    """Load the recipe, resolve its params, find the data, and build the model and its
    parts once (on two real samples, or on PyTorch's meta device for a big model): every
    mistake that does not need the workers shows here, with one message. ``where`` names
    the overrides in messages (``-p`` on the command line, ``params`` in the API)."""
    ws = (workspace or Workspace.discover()).require()
    loaded = load_recipe(recipe)
    declared = declare(loaded.params, loaded.ref)
    params = resolve(declared, overrides, where)
    version = data if isinstance(data, DatasetVersion) else get_version(data, workspace=ws)
    spec = data_spec(version)
    if params.train_split not in spec.splits:
        raise ValidationError(
            f"train_split={params.train_split!r}: {version.ref} has splits "
            f"{', '.join(sorted(spec.splits))} (choose one with -p train_split=NAME, or "
            "split the version: hone data import ... --split train=0.8,test=0.2)"
        )
    validation_split(params, spec)
    rows = spec.splits[params.train_split]
    if rows < world_size:
        raise ValidationError(
            f"the {params.train_split} split of {version.ref} has {rows} row(s): fewer than "
            f"the job's {world_size} processes"
        )
    if params.batch_size % world_size:
        fits = params.batch_size - params.batch_size % world_size or world_size
        raise ValidationError(
            f"batch_size={params.batch_size} is the global batch: it must divide among the "
            f"job's {world_size} processes (e.g. -p batch_size={fits})"
        )
    import torch

    with torch.device("meta"):  # no memory, whatever the model's size
        model = loaded.model(params, spec)
    size = sum(p.numel() * p.element_size() for p in model.parameters())
    on_cpu = size <= CHECK_ON_CPU_BYTES  # real arithmetic on 2 samples: milliseconds
    if on_cpu:
        torch.manual_seed(params.seed)
        model = loaded.model(params, spec)
    total = total_steps(params, rows, world_size)
    parts = build_parts(loaded, params, spec, model, total)
    if loaded.member("loss") is None:  # a recipe's own loss may want other outputs
        if on_cpu:
            check_outputs(model, spec, loaded.ref, parts.metrics)
        else:  # shapes only (PyTorch's meta kernels take ~2 s to load the first time)
            with torch.device("meta"):
                check_outputs(model, spec, loaded.ref)
    evaluated = validation_split(params, spec)
    check_best_metric(
        params, declared["best_metric"], logged_metrics(spec, parts.metrics, evaluated is not None)
    )
    _warn_of_odd_settings(params, spec, evaluated, total)
    return Prepared(loaded, params, version, spec, ws)


def total_steps(params: Params, rows: int, world_size: int) -> int:
    """Optimizer steps the job will take (as the loop counts them: each rank's shard of the
    training split, in batches of batch_size / world_size, the last one partial)."""
    per_rank = rows // world_size
    batch = params.batch_size // world_size
    total = params.epochs * -(-per_rank // batch)
    return int(min(total, params.max_steps) if params.max_steps else total)


def _warn_of_odd_settings(
    params: Params, spec: DataSpec, evaluated: str | None, total: int
) -> None:
    """Settings that train, but rarely as meant: said once, before launch."""
    if evaluated is None and params.val_split == "auto":
        log.warning(
            "hone: %s has no validation split (validation, val, valid or test besides %s): "
            "nothing is evaluated and no checkpoint is kept as best (give -p val_split=NAME, "
            "or split the version)",
            spec.ref[:30],
            params.train_split,
        )
    if evaluated is not None and evaluated == params.train_split:
        log.warning(
            "hone: val_split is the training split (%s): val/ metrics measure how well the "
            "model fits what it trained on, not how it generalizes",
            evaluated,
        )
    if params.warmup_steps >= total:
        log.warning(
            "hone: warmup_steps=%d is not below the job's %d steps: the learning rate never "
            "reaches lr=%g",
            params.warmup_steps,
            total,
            params.lr,
        )
    if spec.classes is not None and len(spec.classes) < 2:
        log.warning(
            "hone: %s has a single class (%r): a classifier learns nothing from it",
            spec.ref[:30],
            spec.classes[0] if spec.classes else None,
        )


def check_outputs(
    model: Any, spec: DataSpec, recipe: str, metrics: Mapping[str, Any] | None = None
) -> None:
    """A batch of two samples through the model (on the current default device: the CPU,
    or the meta device for shapes only): it must take the data's samples and give what
    the standard loss expects."""
    import torch

    dtype = getattr(torch, spec.dtype, None)
    if not isinstance(dtype, torch.dtype) or dtype == torch.float64:
        dtype = torch.float32  # what the loop gives the model (see loop._inputs)
    sample = torch.zeros((2, *spec.shape), dtype=dtype)
    try:
        with torch.no_grad():
            out = model(sample)
    except NotImplementedError:
        return  # an operation without a meta kernel: the first step will tell
    except Exception as exc:
        raise ValidationError(
            f"recipe {recipe}: the model does not take {spec.ref}'s samples (shape "
            f"{spec.shape}, {spec.dtype}): {type(exc).__name__}: {str(exc).splitlines()[0]}"
        ) from exc
    shape = tuple(getattr(out, "shape", ()))
    if spec.classes is not None:
        expected: tuple[int, ...] = (2, spec.num_classes)
        ok = shape == expected
        wanted = f"{expected} (a score for each of its {spec.num_classes} classes)"
    else:
        ok = shape in ((2,), (2, 1))
        wanted = "(2,) or (2, 1) (one value a sample: its labels are numbers)"
    if not ok:
        raise ValidationError(
            f"recipe {recipe}: for a batch of 2 samples of {spec.ref} the model gives "
            f"{shape}; the standard loss wants {wanted} (or give the recipe a loss)"
        )
    target = torch.zeros(2, dtype=torch.int64 if spec.classes is not None else torch.float32)
    for name, fn in (metrics or {}).items():
        try:
            with torch.no_grad():
                metric_sum(name, fn(out, target), 2)
        except ValidationError as exc:
            raise ValidationError(f"recipe {recipe}: {exc}") from None
        except Exception as exc:
            raise ValidationError(
                f"recipe {recipe}: metric {name!r} failed on a batch of 2: {one_line(exc)}"
            ) from exc


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
) -> Outcome:
    """Run the job. Node rank 0 creates (or, with ``resume``, reopens) the run; ``on_start``
    hears its id before training begins."""
    topology.check()
    check_names(experiment, name)
    if topology.nnodes > 1 and topology.node_rank == 0:
        _check_port_free(topology)  # before the run exists: a busy port leaves nothing behind
    elif topology.nnodes > 1:
        _check_host_speaks_rendezvous(topology)
    run: ActiveRun | None = None
    if topology.node_rank == 0:
        run = _open_run(job, experiment, name, resume)
        if on_start is not None:
            on_start(run.id)
    try:
        if topology.in_process:
            assert run is not None
            return _in_process(job, run)
        return _through_torchrun(job, topology, run)
    except BaseException:
        if run is not None and not run.ended:
            run.end(RunStatus.FAILED)
        raise


def check_names(experiment: str, name: str | None) -> None:
    """The run's names, checked before anything starts (the CLI calls it before prepare)."""
    check_name(experiment, "experiment")
    if name is not None:
        check_name(name, "run")


def _open_run(job: Prepared, experiment: str, name: str | None, resume: str | None) -> ActiveRun:
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
            tags={"hone.kind": "train"},
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


def _in_process(job: Prepared, run: ActiveRun) -> Outcome:
    previous = None
    if threading.current_thread() is threading.main_thread():
        # SIGTERM ends the run as Ctrl-C does (killed), instead of leaving it running.
        previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        metrics = train_in_process(_job(job, run.id, 0), run)
    except FATAL as exc:
        run.end(RunStatus.FAILED)
        return Outcome(run.id, RunStatus.FAILED, str(exc))
    except HoneError:
        raise
    except Exception as exc:  # the recipe's code, or PyTorch on its behalf
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


def _job(job: Prepared, run_id: str, threads: int) -> Job:
    return Job(
        recipe=job.recipe.ref,
        data=f"{job.version.name}@{job.version.id}",
        params=dict(job.params),
        workspace=str(job.workspace.home),
        run_id=run_id,
        threads=threads,
    )


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


def _through_torchrun(job: Prepared, topology: Topology, run: ActiveRun | None) -> Outcome:
    threads = threads_per_rank(topology.nproc_per_node)
    env = dict(os.environ)
    env.update(
        HONE_TRAIN_JOB=_job(job, run.id if run else "", threads).to_json(),
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
        preexec_fn=_stop_with_launcher(),
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


def _stop_with_launcher() -> Callable[[], None] | None:
    """What torchrun's child runs before it starts: ask Linux to send it SIGTERM when the
    launcher dies, however it dies (kill -9 included), so that torchrun stops its workers
    instead of training on unowned in a session of their own."""
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


def _check_host_speaks_rendezvous(topology: Topology) -> None:
    """On a node other than 0: if something listens at the endpoint, it must be torchrun's
    rendezvous store (a wrong port, say a database's, would end in torchrun's traceback
    wall). Nothing listening yet is fine: node 0 may start later, and torchrun waits
    --join-timeout for it."""
    import datetime

    from torch._C._distributed_c10d import TCPStore

    assert topology.rdzv_endpoint is not None
    host, port = endpoint(topology.rdzv_endpoint)
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError:
        return
    try:
        with _c10d_quiet():  # PyTorch logs every retry's C++ stack on stderr
            store = TCPStore(
                host, port, is_master=False, timeout=datetime.timedelta(seconds=3)
            )
    except (RuntimeError, ValueError) as exc:
        raise UserError(
            f"--rdzv-endpoint {topology.rdzv_endpoint}: something listens there, but not "
            f"torchrun's rendezvous ({str(exc).splitlines()[0]}); give node rank 0's address "
            "and the port its hone train hosts the rendezvous on"
        ) from None
    del store


@contextlib.contextmanager
def _c10d_quiet() -> Iterator[None]:
    """Standard error (the file descriptor C++ writes to) sent nowhere for a moment."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _check_port_free(topology: Topology) -> None:
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
