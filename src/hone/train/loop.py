"""hone's standard training loop: one recipe, one dataset version, one run, any number of
processes.

Every rank builds the same model from the same seed, reads its own shard of the training
split, and takes one synchronous step at a time (DDP all-reduces the gradients). The loss
of every step is summed across ranks, so every rank sees the same value: a NaN stops the
whole job at once, and rank 0 logs what all of them computed. Evaluation counts every
validation sample exactly once. Rank 0 saves a checkpoint at the end of every epoch (and
every ``checkpoint_every`` steps); a restarted job continues from the latest one, in the
same run, at the next batch of the same data order.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import resource
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch import nn

from hone.data.api import get as get_version
from hone.data.dataset import DatasetVersion
from hone.data.torch_adapter import Loader
from hone.errors import NotFoundError, UserError, ValidationError
from hone.tracking.run import ActiveRun
from hone.tracking.start import start_run
from hone.train.checkpoint import CheckpointWriter, load_latest
from hone.train.distributed import (
    Context,
    all_gather_objects,
    host_name,
    init_distributed,
    sum_across,
)
from hone.train.job import EpochHook, Job, load_hook
from hone.train.params import Params, declare, resolve
from hone.train.parts import build_parts, is_plateau, metric_sum
from hone.train.recipes import DataSpec, LoadedRecipe, data_spec, load_recipe

__all__ = [
    "ERROR_TAG",
    "RESUMED_TAG",
    "STOPPED_TAG",
    "NonFiniteLoss",
    "best_mode",
    "train_in_process",
    "validation_split",
]

log = logging.getLogger("hone.train")

#: The tag a job's fatal error is recorded in (the launcher reads it).
ERROR_TAG = "hone.error"
#: The step a resumed (or restarted) job continued from.
RESUMED_TAG = "hone.resumed_at_step"
#: Set by rank 0 once every rank has finished training (each rank's final step).
DONE_TAG = "hone.rank_steps"
#: Why the job stopped before its last epoch (an epoch hook said so: a pruned trial).
STOPPED_TAG = "hone.stopped"
#: The step and epoch it stopped at.
STOPPED_AT_TAG = "hone.stopped_at"
#: Samples a rank evaluates at once (at least its training batch).
EVAL_BATCH = 512
_VAL_SPLITS = ("validation", "val", "valid", "test")
_MAX_WORDS = ("acc", "f1", "auc", "precision", "recall", "r2")


class NonFiniteLoss(UserError):
    """The loss became NaN or infinite: training cannot go on from there."""


#: Faults of the job itself: a restart would meet them again.
FATAL = (UserError, NotFoundError)


def validation_split(params: Params, spec: DataSpec) -> str | None:
    wanted = params.val_split
    if wanted == "none":
        return None
    if wanted == "auto":
        return next((s for s in _VAL_SPLITS if s in spec.splits and s != params.train_split), None)
    if wanted not in spec.splits:
        raise ValidationError(
            f"val_split={wanted!r}: {short_ref(spec.ref)} has splits "
            f"{', '.join(sorted(spec.splits))} (or give none)"
        )
    return str(wanted)


def short_ref(ref: str) -> str:
    """name@version as people read it: the version's first 12 digits."""
    name, _, version = ref.partition("@")
    return f"{name}@{version[:12]}"


def best_mode(params: Params) -> str:
    if params.best_mode != "auto":
        return str(params.best_mode)
    name = params.best_metric.lower()
    return "max" if any(word in name for word in _MAX_WORDS) else "min"


def train_in_process(job: Job, run: ActiveRun | None = None) -> dict[str, float]:
    """Run this process's part of ``job``; returns the final metrics (the same on every
    rank). ``run`` is given when the caller owns it in this very process."""
    ctx = init_distributed(threads=job.threads or None)
    recipe = load_recipe(job.recipe)
    params = resolve(declare(recipe.params, recipe.ref), job.params)
    version = get_version(job.data, workspace=job.workspace)
    spec = data_spec(version)
    run_id = _agree(job, version, run)
    attached = run
    if ctx.main and attached is None:
        attached = start_run(run_id=run_id, workspace=job.workspace)
    try:
        trainer = _Trainer(ctx, recipe, params, version, spec, run_id, attached)
        if job.hook and ctx.main:
            trainer.hook = load_hook(job.hook, job.hook_config)
        trainer.hooked = bool(job.hook)
        return trainer.fit(job.workspace)
    except FATAL as exc:
        # A fault of the job itself (bad data, NaN loss): recorded where the launcher
        # looks, so it fails the run at once instead of restarting into the same fault.
        if attached is not None:
            attached.set_tag(ERROR_TAG, str(exc)[:4000])
        raise
    finally:
        if attached is not None and attached is not run:
            attached.end()  # an attached run ends without a status: the launcher owns it


def _agree(job: Job, version: DatasetVersion, run: ActiveRun | None) -> str:
    """Every rank must train on the same version for the same run: the run id comes from
    the node whose launcher created it."""
    mine = run.id if run is not None else job.run_id
    seen = all_gather_objects((mine, version.id))
    versions = {v for _, v in seen}
    if len(versions) > 1:
        raise ValidationError(
            f"the job's processes read different versions of {version.name} "
            f"({', '.join(sorted(v[:12] for v in versions))}): give an exact version"
        )
    ids = {r for r, _ in seen if r}
    if len(ids) != 1:
        raise ValidationError(
            f"the job's nodes name {len(ids)} runs ({', '.join(sorted(ids)) or 'none'}): exactly "
            "one node (node rank 0) creates the run"
        )
    return str(ids.pop())


class _Trainer:
    def __init__(
        self,
        ctx: Context,
        recipe: LoadedRecipe,
        params: Params,
        version: DatasetVersion,
        spec: DataSpec,
        run_id: str,
        run: ActiveRun | None,
    ) -> None:
        self.ctx, self.recipe, self.params, self.spec = ctx, recipe, params, spec
        self.run_id, self.run = run_id, run
        self.hook: EpochHook | None = None  # rank 0's; the others only hear its answer
        self.hooked = False
        per_rank, left = divmod(params.batch_size, ctx.world_size)
        if left or per_rank < 1:
            raise ValidationError(
                f"batch_size={params.batch_size} is the global batch: it must divide among "
                f"the job's {ctx.world_size} processes"
            )
        torch.manual_seed(params.seed)
        self.model = recipe.model(params, spec).to(ctx.device)
        classes = spec.classes is not None
        self.train_data = Loader(
            version, params.train_split, per_rank, seed=params.seed, label_index=classes
        )
        val_split = validation_split(params, spec)
        self.val_data = (
            # No gradients to keep: larger batches, fewer calls.
            Loader(
                version,
                val_split,
                max(per_rank, EVAL_BATCH),
                shuffle=False,
                even=False,
                label_index=classes,
            )
            if val_split is not None
            else None
        )
        per_epoch = len(self.train_data)
        self.total_steps = params.epochs * per_epoch
        if params.max_steps:
            self.total_steps = min(self.total_steps, params.max_steps)
        parts = build_parts(recipe, params, spec, self.model, self.total_steps)
        self.loss_fn, self.metric_fns = parts.loss, parts.metrics
        self.optimizer, self.scheduler = parts.optimizer, parts.scheduler
        self.plateau = is_plateau(self.scheduler)  # stepped once an epoch, on best_metric
        self.amp_dtype = _amp_dtype(params.amp, ctx.device)
        self.scaler = torch.amp.GradScaler(ctx.device.type, enabled=self.amp_dtype is torch.float16)
        self.ddp: nn.Module = self.model
        if ctx.world_size > 1:
            self.ddp = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None
            )

    # The loop --------------------------------------------------------------------------

    def fit(self, workspace: str) -> dict[str, float]:
        self.checkpoints = CheckpointWriter()  # rank 0 writes them while training goes on
        try:
            final, step = self._train(workspace)
        except BaseException:
            try:
                self.checkpoints.close()  # a checkpoint begun is finished, if it can be
            except Exception as exc:  # the job's own error is the one to report
                log.warning("hone: the last checkpoint could not be written: %s", exc)
            raise
        self.checkpoints.close()  # stored before the run can count as done
        self._check_lockstep(step)
        return final

    def _train(self, workspace: str) -> tuple[dict[str, float], int]:
        p, ctx = self.params, self.ctx
        restored = load_latest(
            self.model, self.optimizer, self.scheduler, run=self.run_id, workspace=workspace
        )
        step, epoch, batch = 0, 0, 0
        # The epoch's loss so far (sum, samples): a resumed epoch reports all of it.
        self.totals = [0.0, 0.0]
        if restored is not None:
            step, epoch, batch = restored.step, restored.epoch, restored.batch
            if batch and "epoch_totals" in restored.extra:
                loss_sum, samples = restored.extra["epoch_totals"]
                self.totals = [float(loss_sum), float(samples)]
            if "scaler" in restored.extra and self.scaler.is_enabled():
                self.scaler.load_state_dict(restored.extra["scaler"])
            if restored.skipped and ctx.main:
                log.warning(
                    "hone: resumed from step %d: the checkpoints at %s could not be read",
                    step,
                    ", ".join(map(str, restored.skipped)),
                )
        self._describe(restored is not None, step)
        final: dict[str, float] = {}
        alone = ctx.world_size == 1
        while epoch < p.epochs and step < self.total_steps:
            self.train_data.set_epoch(epoch, start=batch)
            self.ddp.train()
            totals = self.totals
            for x, y in self.train_data:
                loss, count = self._step(x, y)
                step += 1
                batch += 1
                loss_sum, samples = loss * count, float(count)
                if alone:  # nothing to reduce: no tensor, no collective, every step
                    reduced = (loss_sum, samples)
                else:
                    both = sum_across(torch.tensor([loss_sum, samples], dtype=torch.float64))
                    reduced = (float(both[0]), float(both[1]))
                mean = reduced[0] / reduced[1]
                if not math.isfinite(mean):
                    raise NonFiniteLoss(
                        f"the training loss became {mean} at step {step} (epoch {epoch + 1}): "
                        "lower lr, or check the data for extreme values"
                    )
                totals[0] += reduced[0]
                totals[1] += reduced[1]
                if self.run is not None and step % p.log_every == 0:
                    self.run.log_metric("train/loss", mean, step=step)
                if p.checkpoint_every and step % p.checkpoint_every == 0:
                    self._save(step, epoch, batch, {"train/loss": mean})
                if step >= self.total_steps:
                    break
            finished_epoch = batch >= len(self.train_data)
            if finished_epoch:
                epoch, batch = epoch + 1, 0
            final = self._evaluate()
            if totals[1] > 0:
                final["train/epoch_loss"] = totals[0] / totals[1]
            final["epoch"] = float(epoch)
            self.totals = totals = [0.0, 0.0]
            if self.plateau and p.best_metric in final:
                self.scheduler.step(final[p.best_metric])
            final["lr"] = float(self.optimizer.param_groups[0]["lr"])
            if self.run is not None:
                self.run.log_metrics(final, step=step)
            self._save(step, epoch, batch, final)
            if self.hooked and self._stop_early(epoch, step, final):
                break
        if not final:  # resumed after the last step: report what the model does now
            final = self._evaluate()
        return final, step

    def _stop_early(self, epoch: int, step: int, metrics: dict[str, float]) -> bool:
        """Rank 0 asks the epoch hook; every rank hears the answer (stop, go on, or fail)."""
        answer: tuple[str, str] | None = None
        if self.hook is not None:
            try:
                reason = self.hook(epoch, step, dict(metrics))
            except FATAL as exc:
                answer = ("error", str(exc))
            except Exception as exc:  # the hook's own fault: the job fails, saying so
                answer = ("error", f"the epoch hook failed: {type(exc).__name__}: {exc}")
            else:
                answer = ("stop", reason) if reason else None
        if self.ctx.world_size > 1:
            answer = all_gather_objects(answer)[0]
        if answer is None:
            return False
        kind, text = answer
        if kind == "error":
            raise UserError(text)
        if self.run is not None:
            self.run.set_tags({STOPPED_TAG: text[:4000], STOPPED_AT_TAG: f"{step}:{epoch}"})
        return True

    def _check_lockstep(self, step: int) -> None:
        """Every rank's step count and a digest of its final weights, recorded by rank 0:
        synchronous training ends with the same model everywhere, and the run shows it.
        Each rank's peak memory is recorded beside them."""
        digest = hashlib.sha256()
        for name, tensor in sorted(self.model.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
        peak_mib = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)  # KiB
        gathered = all_gather_objects((step, digest.hexdigest()[:16], peak_mib))
        if self.run is not None:
            self.run.set_tags(
                {
                    DONE_TAG: json.dumps([s for s, _, _ in gathered]),
                    "hone.rank_weights": json.dumps([d for _, d, _ in gathered]),
                    "hone.rank_peak_rss_mib": json.dumps([m for _, _, m in gathered]),
                }
            )
        seen = [(s, d) for s, d, _ in gathered]  # each rank's, in rank order
        if len(set(seen)) > 1:
            log.warning("hone: the ranks ended out of step: %s", seen)

    def _step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, int]:
        x, y = _inputs(x, self.ctx.device), y.to(self.ctx.device, non_blocking=True)
        with self._autocast():
            loss = self.loss_fn(self.ddp(x), y)
        self.optimizer.zero_grad(set_to_none=True)
        if not self.scaler.is_enabled():  # the common case, without the scaler's calls
            loss.backward()  # type: ignore[no-untyped-call]
            if self.params.grad_clip > 0:
                nn.utils.clip_grad_norm_(self.model.parameters(), self.params.grad_clip)
            self.optimizer.step()
        else:
            self.scaler.scale(loss).backward()  # type: ignore[no-untyped-call]
            if self.params.grad_clip > 0:
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(self.model.parameters(), self.params.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        if not self.plateau:
            self.scheduler.step()
        return float(loss.detach()), len(x)

    def _autocast(self) -> AbstractContextManager[Any]:
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(self.ctx.device.type, dtype=self.amp_dtype)

    @torch.no_grad()
    def _evaluate(self) -> dict[str, float]:
        if self.val_data is None:
            return {}
        self.model.eval()
        names = ["loss", *(["acc"] if self.spec.classes is not None else []), *self.metric_fns]
        sums = torch.zeros(len(names) + 1, dtype=torch.float64)
        for x, y in self.val_data:
            x, y = _inputs(x, self.ctx.device), y.to(self.ctx.device)
            with self._autocast():
                out = self.model(x)
            n = len(x)
            values = [float(self.loss_fn(out, y)) * n]
            if self.spec.classes is not None:
                values.append(float((out.argmax(1) == y).sum()))
            for name, fn in self.metric_fns.items():
                values.append(metric_sum(name, fn(out, y), n))
            sums += torch.tensor([*values, n], dtype=torch.float64)
        sums = sum_across(sums)
        count = float(sums[-1])
        if count == 0:
            return {}
        return {f"val/{name}": float(sums[i]) / count for i, name in enumerate(names)}

    def _save(self, step: int, epoch: int, batch: int, metrics: dict[str, float]) -> None:
        if self.run is None:
            return
        p = self.params
        self.checkpoints.save(
            self.model,
            self.optimizer,
            self.scheduler,
            step=step,
            epoch=epoch,
            batch=batch,
            metrics=metrics,
            extra={
                "epoch_totals": list(self.totals),
                **({"scaler": self.scaler.state_dict()} if self.scaler.is_enabled() else {}),
            },
            run=self.run,
            keep_last=p.keep_last,
            keep_best=p.keep_best,
            best_metric=p.best_metric,
            best_mode=best_mode(p),
        )

    def _describe(self, resumed: bool, step: int) -> None:
        """Rank 0 records how the job ran: sizes as params, hosts as a tag (a restarted
        job may land elsewhere)."""
        ctx = self.ctx
        hosts = all_gather_objects(f"{host_name()} (node {os.environ.get('GROUP_RANK', '0')})")
        if self.run is None:
            return
        described = {
            "world_size": ctx.world_size,
            "nodes": int(os.environ.get("GROUP_WORLD_SIZE", "1") or 1),
            "backend": ctx.backend or "none",
            "device": ctx.device.type,
            "threads_per_rank": ctx.threads,
            "amp_dtype": str(self.amp_dtype).removeprefix("torch.") if self.amp_dtype else "none",
            "total_steps": self.total_steps,
        }
        # A run resumed on another layout keeps its first params; what changed is a tag.
        before = self.run._params
        changed = {k: v for k, v in described.items() if k in before and before[k] != str(v)}
        self.run.log_params({k: v for k, v in described.items() if k not in changed})
        self.run.set_tags({f"hone.resumed.{k}": v for k, v in changed.items()})
        self.run.set_tags({"hone.hosts": json.dumps(hosts)})
        if resumed:
            self.run.set_tag(RESUMED_TAG, step)


def _inputs(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Features as a model takes them: float64 (what CSV and NumPy give) becomes PyTorch's
    default float32; integers (pixels, token ids) stay as they are."""
    if x.dtype == torch.float64:
        x = x.float()
    return x.to(device, non_blocking=True)


def _amp_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    if amp == "off" or (amp == "auto" and device.type != "cuda"):
        return None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16  # CPU autocast, asked for with amp=on
