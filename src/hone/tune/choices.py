"""The samplers and pruners a study may use, by name: Optuna's, configured for hone's
trials (a trial reports its metric once per epoch, steps 1, 2, ...)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hone.errors import ValidationError

if TYPE_CHECKING:
    import optuna

    from hone.tune.space import Space

__all__ = ["DIRECTIONS", "PRUNERS", "SAMPLERS", "check_choice", "make_pruner", "make_sampler"]

SAMPLERS = ("tpe", "random", "grid", "cmaes")
PRUNERS = ("median", "asha", "hyperband", "none")
DIRECTIONS = ("maximize", "minimize")


def check_choice(value: str, choices: tuple[str, ...], option: str) -> str:
    if value not in choices:
        raise ValidationError(f"{option} {value!r}: choose one of {', '.join(choices)}")
    return value


def make_sampler(name: str, space: Space, seed: int | None) -> optuna.samplers.BaseSampler:
    import optuna

    check_choice(name, SAMPLERS, "--sampler")
    if name == "tpe":
        # constant_liar: trials running in parallel count as bad guesses while they run,
        # so processes that ask at once do not all try the same region.
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "grid":
        return optuna.samplers.GridSampler(space.grid(), seed=seed)
    try:
        import cmaes  # noqa: F401  (Optuna's CMA-ES sampler needs it)
    except ImportError:
        raise ValidationError(
            "--sampler cmaes needs the cmaes package: pip install 'hone[tune]'"
        ) from None
    # Choices are not CMA-ES's to search: those params are sampled independently (at random).
    return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)


def make_pruner(name: str, epochs: int) -> optuna.pruners.BasePruner:
    import optuna

    check_choice(name, PRUNERS, "--pruner")
    if name == "median":
        # Judge a trial only once a few have finished, and never on its first epoch (Optuna
        # judges a step >= n_warmup_steps; hone's steps are epochs, from 1).
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2)
    if name == "asha":
        # The first rung after a sixth of the epochs: an epoch-1 score of a slow starter
        # says little of where it ends (at min_resource=1 ASHA kept 3 of 20 digits trials
        # and ended 1-2 samples short of random search; docs/benchmarks.md).
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=max(1, epochs // 6), reduction_factor=3
        )
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=1, max_resource=max(epochs, 1), reduction_factor=3
        )
    return optuna.pruners.NopPruner()
