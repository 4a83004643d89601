"""New versions derived from a version, each recorded as lineage with its parameters.

- ``append``: new rows; only their chunks are written (O(k) bytes for k rows), statistics
  are merged, not recomputed.
- ``relabel``, ``filter``, ``resplit``: rows rewritten in the same chunk layout, so chunks
  that did not change keep their digests and are not stored again.
- ``normalize``: no rows are written at all; the fitted parameters (fitted on one split,
  by default ``train``) become a transform step of the manifest, applied when rows are read.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hone.data.arrays import ArraySource
from hone.data.chunks import read_table, write_chunks
from hone.data.commit import commit_version
from hone.data.dataset import DatasetVersion, apply_transforms, features_of
from hone.data.importers import TABLE_SUFFIXES, display_path, open_source, sample_ids_for
from hone.data.ingest import Ingested, Options, ingest
from hone.data.manifest import LABEL, SAMPLE_ID, SPLIT
from hone.data.splits import SplitWarning, assign_splits, check_seed, parse_split_spec
from hone.data.stats import merge_summaries, summarize
from hone.errors import NotFoundError, ValidationError

__all__ = ["append", "append_arrays", "filter", "normalize", "relabel", "resplit"]


def append(
    version: DatasetVersion,
    source: str | os.PathLike[str],
    *,
    split: str | dict[str, float] | None = None,
    seed: int | np.integer[Any] = 0,
    allow_nonfinite: bool = False,
) -> DatasetVersion:
    """A new version with ``source``'s rows added (same columns as ``version``).

    The new rows' split comes from ``split`` (default: the parent's import fractions,
    stratified if the parent's split was); existing rows keep theirs, so no sample moves
    between train and test. The source is streamed as an import is.
    """
    parent = version.manifest
    seed = check_seed(seed)
    text = os.fsdecode(source) if isinstance(source, str | os.PathLike) else source
    tabular = isinstance(text, str) and Path(text).suffix.lower() in TABLE_SUFFIXES
    # A table names its columns like the parent's; .npz and bundled sets have their own.
    label = parent.label.name if parent.label and tabular else None
    opened = open_source(source, label, list(parent.feature_names) if tabular else None)
    fractions, stratify = _append_split(version, split)
    options = Options(
        names=list(fractions),
        fractions=list(fractions.values()),
        stratify=stratify,
        seed=seed,
        allow_nonfinite=bool(allow_nonfinite),
        **_fitting(version),
    )
    if (opened.label_name is None) != (parent.label is None):
        raise ValidationError(f"{opened.text} and {version.ref} must both have labels, or neither")
    done = ingest(opened, options, version.blobs)
    lineage = {
        "op": "append",
        "source": {"kind": opened.kind, "digest": done.digest},
        "params": {"split": fractions, "stratify": stratify, "seed": seed, "rows": done.rows},
    }
    return _commit_append(version, done, lineage, _shown(source))


def append_arrays(
    version: DatasetVersion,
    x: np.ndarray,
    y: np.ndarray | None,
    *,
    splits: str | Sequence[str] | np.ndarray,
    origin: str,
    keys: Sequence[str] = (),
    allow_nonfinite: bool = False,
) -> tuple[DatasetVersion, np.ndarray]:
    """A new version with the rows ``x`` (and labels ``y``) added from memory: rows that
    come from outside a file (served predictions). ``splits`` names each row's split (or
    one split for all); ``origin`` says where the rows came from (kept in the lineage);
    ``keys`` (one text per row, e.g. request ids) give each row its sample id: the same key
    always gets the same id, so a keyed row the version (or the call) holds already is
    refused. Returns the new version and the rows' sample ids, in order."""
    parent = version.manifest
    x = np.asarray(x)
    rows = len(x)
    if not rows:
        raise ValidationError(f"no rows to append to {version.ref}")
    if x.shape[1:] != tuple(parent.features.shape):
        raise ValidationError(
            f"rows shaped {tuple(x.shape[1:])} do not fit {version.ref}, whose rows are "
            f"{tuple(parent.features.shape)}"
        )
    if (y is None) != (parent.label is None):
        raise ValidationError(f"give labels for {version.ref}'s rows, or none if it has none")
    if y is not None and len(y) != rows:
        raise ValidationError(f"{rows} rows but {len(y)} labels")
    given: object = splits
    if given is None or isinstance(given, bytes):  # typed away, but callers are untyped
        raise ValidationError("splits: give one split name, or one per row")
    named = [splits] * rows if isinstance(splits, str) else [str(s) for s in splits]
    if len(named) != rows:
        raise ValidationError(f"{rows} rows but {len(named)} split names")
    names = list(dict.fromkeys([*parent.splits, *named]))
    for name in names:
        parse_split_spec({name: 1.0})  # a split name hone accepts
    index = {name: i for i, name in enumerate(names)}
    assigned = np.fromiter((index[n] for n in named), dtype=np.int8, count=rows)
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(x).tobytes())
    if y is not None:
        digest.update(np.asarray(y).tobytes())
    ids = None
    if keys is not None and len(keys):
        keys = list(keys)
        ids = keyed_sample_ids(keys, rows)
        for key in keys:
            digest.update(key.encode() + b"\0")
    source = ArraySource(
        "arrays",
        origin,
        x,
        None if y is None else np.asarray(y),
        parent.feature_names,
        parent.label.name if parent.label else None,
        digest.hexdigest(),
    )
    options = Options(
        names=names,
        fractions=[0.0] * len(names),
        stratify=False,
        seed=0,
        allow_nonfinite=bool(allow_nonfinite),
        **_fitting(version),
        assigned=assigned,
        sample_ids=ids,
    )
    done = ingest(source, options, version.blobs)
    counts = {name: int((assigned == i).sum()) for i, name in enumerate(names)}
    lineage = {
        "op": "append",
        "source": {"kind": "arrays", "digest": done.digest, "origin": origin},
        "params": {"splits": {k: v for k, v in counts.items() if v}, "rows": rows},
    }
    new = _commit_append(version, done, lineage, origin)
    return new, ids if ids is not None else sample_ids_for(done.digest, rows)


def _fitting(version: DatasetVersion) -> dict[str, Any]:
    """What makes appended rows fit ``version``: its feature names, shape and types, and a
    count of the new rows' sample ids it holds already."""
    parent = version.manifest
    existing = read_table(parent.chunks, version.blobs, columns=[SAMPLE_ID]).column(SAMPLE_ID)

    def clashes(ids: np.ndarray) -> int:
        return int(pc.sum(pc.is_in(pa.array(ids), value_set=existing)).as_py() or 0)

    return {
        "feature_names": parent.feature_names,
        "shape": parent.features.shape,
        "dtype": np.dtype(parent.features.dtype),
        "label_dtype": np.dtype(parent.label.dtype) if parent.label else None,
        "clashes": clashes,
        "target": version.ref,
    }


def _commit_append(
    version: DatasetVersion, done: Ingested, lineage: dict[str, Any], source: str
) -> DatasetVersion:
    """The parent's manifest with the ingested rows' chunks added, their statistics merged
    (not recomputed), and the lineage given; committed."""
    parent = version.manifest
    classes = parent.classes
    if classes is not None and done.classes is not None:
        classes = tuple(sorted(set(classes) | set(done.classes)))
    manifest = replace(
        parent,
        chunks=parent.chunks + tuple(done.chunks),
        splits=_counts_from(parent.splits, done.splits),
        classes=classes,
        parents=(version.id,),
        lineage=lineage,
    )
    summary = merge_summaries(_stats_only(version.summary), done.summary)
    if done.warnings:
        summary["warnings"] = done.warnings
    return commit_version(version.db, version.blobs, manifest, summary, source, home=version.home)


def keyed_sample_ids(keys: Sequence[str], rows: int) -> np.ndarray:
    """One 63-bit sample id per key (from its sha256): the same key, the same id."""
    if len(keys) != rows:
        raise ValidationError(f"{rows} rows but {len(keys)} keys")
    if not all(isinstance(k, str) and k for k in keys):
        bad = next(k for k in keys if not (isinstance(k, str) and k))
        raise ValidationError(f"key {bad!r:.60}: keys are non-empty text (request ids, say)")
    seen: dict[str, int] = {}
    for i, key in enumerate(keys):
        if key in seen:
            raise ValidationError(f"key {key!r:.60} is given twice (rows {seen[key]} and {i})")
        seen[key] = i
    ids = [
        int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") & 0x7FFFFFFFFFFFFFFF
        for key in keys
    ]
    return np.asarray(ids, np.int64)


def relabel(version: DatasetVersion, labels: Mapping[int, Any]) -> DatasetVersion:
    """A new version where the rows with these sample ids carry new labels."""
    parent = version.manifest
    if parent.label is None:
        raise ValidationError(f"{version.ref} has no labels to change")
    if not isinstance(labels, Mapping):
        raise ValidationError(
            f"relabel takes a mapping of sample id → label, got {type(labels).__name__}"
        )
    if not labels:
        raise ValidationError("relabel needs at least one sample id → label")
    labels = {_sample_id(sid): value for sid, value in labels.items()}
    table = read_table(parent.chunks, version.blobs)
    ids = table.column(SAMPLE_ID).to_numpy()
    position = {int(sid): i for i, sid in enumerate(ids)}
    unknown = [sid for sid in labels if int(sid) not in position]
    if unknown:
        shown = ", ".join(str(s) for s in unknown[:5]) + (" …" if len(unknown) > 5 else "")
        raise NotFoundError(f"{len(unknown)} sample id(s) are not in {version.ref}: {shown}")
    current = table.column(LABEL).to_numpy(zero_copy_only=False).copy()
    changed = 0
    for sid, value in labels.items():
        i = position[int(sid)]
        new_value = _cast(np.asarray(value), current.dtype, f"label {value!r}", version.ref)
        changed += int(current[i] != new_value)
        current[i] = new_value
    table = table.set_column(table.column_names.index(LABEL), LABEL, pa.array(current))
    params = {"count": len(labels), "changed": changed}
    return _rewrite(version, table, "relabel", params)


def filter(
    version: DatasetVersion,
    *,
    splits: Iterable[str] | None = None,
    labels: Iterable[Any] | None = None,
    sample_ids: Iterable[int] | None = None,
    drop_sample_ids: Iterable[int] | None = None,
) -> DatasetVersion:
    """A new version keeping only the rows that match every condition given."""
    parent = version.manifest
    splits, labels = _listed(splits), _listed(labels)
    if sample_ids is not None:
        sample_ids = [_sample_id(s) for s in sample_ids]
    if drop_sample_ids is not None:
        drop_sample_ids = [_sample_id(s) for s in drop_sample_ids]
    table = read_table(parent.chunks, version.blobs)
    keep = np.ones(table.num_rows, dtype=bool)
    params: dict[str, Any] = {}
    if splits is not None:
        wanted = sorted(set(splits))
        unknown = [s for s in wanted if s not in parent.splits]
        if unknown:
            raise ValidationError(f"{version.ref} has no split(s) {', '.join(unknown)}")
        keep &= np.isin(
            table.column(SPLIT).cast(pa.string()).to_numpy(zero_copy_only=False), wanted
        )
        params["splits"] = wanted
    if labels is not None:
        if parent.label is None:
            raise ValidationError(f"{version.ref} has no labels to filter on")
        wanted_labels = sorted(set(labels), key=str)
        keep &= np.isin(table.column(LABEL).to_numpy(zero_copy_only=False), wanted_labels)
        params["labels"] = [_plain(v) for v in wanted_labels]
    ids = table.column(SAMPLE_ID).to_numpy()
    if sample_ids is not None:
        wanted_ids = sorted({int(s) for s in sample_ids})
        keep &= np.isin(ids, wanted_ids)
        params["sample_ids"] = wanted_ids
    if drop_sample_ids is not None:
        dropped = sorted({int(s) for s in drop_sample_ids})
        keep &= ~np.isin(ids, dropped)
        params["drop_sample_ids"] = dropped
    if not params:
        raise ValidationError(
            "filter needs a condition: splits, labels, sample_ids or drop_sample_ids"
        )
    if not keep.any():
        raise ValidationError(f"the filter keeps no row of {version.ref}")
    return _rewrite(version, table.filter(pa.array(keep)), "filter", params)


def resplit(
    version: DatasetVersion,
    split: str | dict[str, float],
    *,
    stratify: bool = False,
    seed: int | np.integer[Any] = 0,
) -> DatasetVersion:
    """A new version with every row assigned to a split anew."""
    parent = version.manifest
    fractions = parse_split_spec(split)
    seed = check_seed(seed)
    if stratify and parent.label is None:
        raise ValidationError("stratify needs labels")
    table = read_table(parent.chunks, version.blobs)
    labels = table.column(LABEL).to_numpy(zero_copy_only=False) if stratify else None
    assigned, warning = assign_splits(table.num_rows, fractions, seed, labels)
    if warning:
        warnings.warn(warning, SplitWarning, stacklevel=2)
    table = table.set_column(
        table.column_names.index(SPLIT),
        SPLIT,
        pa.array(assigned, type=pa.string()).dictionary_encode(),
    )
    params = {"split": fractions, "stratify": stratify, "seed": seed}
    return _rewrite(version, table, "resplit", params)


def normalize(
    version: DatasetVersion, *, method: str = "standard", fit_split: str = "train"
) -> DatasetVersion:
    """A new version whose features are normalized when read, with parameters fitted on
    ``fit_split`` only (so nothing about the test rows leaks into training). No rows are
    written: the version shares its parent's chunks and adds a transform step."""
    if method not in ("standard", "minmax"):
        raise ValidationError(f"normalize method {method!r}: use 'standard' or 'minmax'")
    parent = version.manifest
    if fit_split not in parent.splits:
        raise ValidationError(
            f"{version.ref} has no split {fit_split!r} to fit on; it has "
            f"{', '.join(sorted(parent.splits))} (choose one with fit_split=…)"
        )
    table = read_table(parent.chunks, version.blobs, split=fit_split)
    x = apply_transforms(features_of(table, parent), parent.transforms)
    flat = x.reshape(len(x), -1).astype(np.float64)
    with np.errstate(all="ignore"):
        if method == "standard":
            shift, spread = np.nanmean(flat, axis=0), np.nanstd(flat, axis=0)
        else:
            shift = np.nanmin(flat, axis=0)
            spread = np.nanmax(flat, axis=0) - shift
    spread = np.where(np.isfinite(spread) & (spread > 0), spread, 1.0)
    shift = np.where(np.isfinite(shift), shift, 0.0)
    step = {
        "op": "standardize" if method == "standard" else "minmax",
        "shift": shift.tolist(),
        "scale": (1.0 / spread).tolist(),
        "fitted_on": fit_split,
        "fitted_rows": len(flat),
    }
    manifest = replace(
        parent,
        parents=(version.id,),
        transforms=(*parent.transforms, step),
        lineage={"op": "normalize", "params": {"method": method, "fit_split": fit_split}},
    )
    return commit_version(
        version.db, version.blobs, manifest, _stats_only(version.summary), home=version.home
    )


def _rewrite(
    version: DatasetVersion, table: pa.Table, op: str, params: dict[str, Any]
) -> DatasetVersion:
    parent = version.manifest
    chunks = write_chunks(table, version.blobs)
    x = features_of(table, parent)
    labels = table.column(LABEL).to_numpy(zero_copy_only=False) if parent.label else None
    splits = table.column(SPLIT).cast(pa.string()).to_numpy(zero_copy_only=False).astype(str)
    manifest = replace(
        parent,
        chunks=tuple(chunks),
        splits=_counts({}, splits),
        parents=(version.id,),
        lineage={"op": op, "params": params},
    )
    summary = summarize(x, parent.feature_names, labels, splits)
    return commit_version(version.db, version.blobs, manifest, summary, home=version.home)


def _append_split(
    version: DatasetVersion, split: str | dict[str, float] | None
) -> tuple[dict[str, float], bool]:
    if split is not None:
        return parse_split_spec(split), False
    params = version.summary.get("lineage", {}).get("params", {})
    fractions = params.get("split")
    if not fractions:
        raise ValidationError(
            f"say which split the new rows join ({version.ref} was made by "
            f"{version.row.operation}): split='train' or split='train=0.8,test=0.2'"
        )
    return parse_split_spec(dict(fractions)), bool(params.get("stratify"))


def _cast(values: np.ndarray, dtype: np.dtype[Any] | str, what: str, ref: str) -> np.ndarray:
    """``values`` as ``dtype`` where no information is lost in kind (int→float is fine,
    float→int or text→number is not)."""
    target = np.dtype(dtype)
    if values.dtype.kind in "USO" and target.kind in "USO":
        return values.astype(target if target.kind != "U" else values.dtype)
    if not np.can_cast(values.dtype, target, casting="same_kind"):
        raise ValidationError(f"{what} are {values.dtype}, but {ref} holds {target}")
    return values.astype(target, casting="same_kind")


def _counts_from(base: dict[str, int], added: dict[str, int]) -> dict[str, int]:
    return {k: base.get(k, 0) + added.get(k, 0) for k in sorted(set(base) | set(added))}


def _shown(source: object) -> str:
    text = os.fsdecode(source) if isinstance(source, str | os.PathLike) else str(source)
    return text if text.startswith("sklearn:") else display_path(text)


def _counts(base: dict[str, int], splits: np.ndarray) -> dict[str, int]:
    names, counts = np.unique(splits, return_counts=True)
    merged = dict(base)
    for name, count in zip(names, counts, strict=True):
        merged[str(name)] = merged.get(str(name), 0) + int(count)
    return merged


def _stats_only(summary: dict[str, Any]) -> dict[str, Any]:
    keep = ("rows", "splits", "nonfinite", "duplicates", "features", "features_total", "labels")
    return {k: summary[k] for k in keep if k in summary}


def _sample_id(value: object) -> int:
    """Sample ids are integers (NumPy's too); anything else is refused, not truncated."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValidationError(
            f"sample id {value!r}: sample ids are integers (the __sample_id column)"
        )
    return int(value)


def _listed(values: Iterable[Any] | None) -> list[Any] | None:
    """A single split name or label given alone means that one, not its characters."""
    if values is None:
        return None
    if isinstance(values, str | bytes):
        return [values]
    return list(values)


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
