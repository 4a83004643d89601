"""A registered version's network, rebuilt as it trained: its recipe, its params, the
dataset version's shape and classes, the checkpoint's weights (safetensors: no pickle);
and the held-out rows every export is checked on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from hone.blobs import BlobStore
from hone.data.dataset import DatasetVersion
from hone.errors import BlobError, ValidationError
from hone.ids import sha256_bytes
from hone.train.params import declare, resolve
from hone.train.recipes import DataSpec, LoadedRecipe, load_recipe, one_line

__all__ = ["CHECK_ROWS", "Built", "build", "check_source", "held_out", "source_digest"]

#: Rows each export is checked on.
CHECK_ROWS = 256


@dataclass
class Built:
    ref: str  # as messages name it
    body: dict[str, Any]  # the version's record: recipe, params, ...
    network: torch.nn.Module
    spec: DataSpec
    transforms: tuple[dict[str, Any], ...]

    @property
    def classification(self) -> bool:
        return self.spec.classes is not None


def build(
    ref: str, body: dict[str, Any], weights: str, data: DatasetVersion, blobs: BlobStore
) -> Built:
    """The network of a version (``body``: its record; ``weights``: the checkpoint's
    safetensors blob) with its weights loaded, in eval mode, on the CPU."""
    from safetensors.torch import load as load_safetensors

    from hone.train.recipes import data_spec

    recipe = load_recipe(body["recipe"])
    check_source(recipe, body.get("recipe_source"), ref)
    params = resolve(declare(recipe.params, recipe.ref), body["params"], "the version's params")
    spec = data_spec(data)
    torch.manual_seed(0)
    network = recipe.model(params, spec)
    try:
        state = load_safetensors(blobs.get_bytes(weights))
    except BlobError:
        raise
    except Exception as exc:
        raise BlobError(
            f"{ref}: its weights (blob {weights[:12]}) do not read as safetensors: {one_line(exc)}"
        ) from exc
    try:
        network.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ValidationError(
            f"{ref}: recipe {recipe.ref} now builds a network its weights do not fit "
            f"(the recipe changed since it trained?): {one_line(exc)}"
        ) from exc
    return Built(ref, body, network.eval(), spec, tuple(data.manifest.transforms))


def source_digest(recipe: LoadedRecipe) -> tuple[str, str] | None:
    """The recipe file's name and the digest of its text, as a run keeps it (``recipe/``
    artifact); None for a builtin or a recipe without a readable file."""
    found = recipe.source()
    if found is None:
        return None
    name, text = found
    return name, sha256_bytes(text.encode(errors="surrogateescape"))


def check_source(recipe: LoadedRecipe, kept: dict[str, Any] | None, ref: str) -> None:
    """The recipe's file must be what the run trained with (its copy's digest): a changed
    file would rebuild another network around the same weights, and verification would
    compare it with itself."""
    if not kept:
        return
    now = source_digest(recipe)
    if now is None or now[1] != kept["digest"]:
        raise ValidationError(
            f"{ref}: recipe {recipe.ref} is not the file its run trained with (the run keeps "
            f"that copy as artifact {kept['path']}, blob {kept['digest'][:12]}): restore it "
            "to export or register this model"
        )


def held_out(
    data: DatasetVersion, train_split: str, rows: int = CHECK_ROWS
) -> tuple[np.ndarray, str]:
    """Up to ``rows`` raw rows the model did not train on (the test split, else another
    split than training's; the training split only when there is no other), and the split."""
    splits = data.splits
    others: list[str] = [
        s for s in ("test", "validation", "val", "valid") if s in splits and s != train_split
    ]
    others += sorted(s for s in splits if s not in others and s != train_split)
    split = others[0] if others else train_split
    x, _ = data.to_numpy(split, raw=True)
    return np.ascontiguousarray(x[:rows]), split
