"""Sample-library benchmarks; prints RESULT lines (run_all.py collects them).

    python benchmarks/bench_data.py WORKDIR [--quick] [--only=NAME]

1. ``data_append``: append 1% new rows to a 1,000,000-row tabular version: new bytes
   against the version's total, wall time against the full import;
2. ``data_adapter``: iterate a 1,000,000 x 64 float32 split in batches of 256 through
   hone's loader, and through a DataLoader over ds.torch(), each beside the same access to
   a plain in-memory NumPy array;
3. ``data_import``: import throughput and peak memory from CSV and Parquet (200,000 x 21)
   and from CSV at 1,000,000 x 65 (668 MB), beside pandas read_csv/read_parquet +
   DataFrame.to_parquet. Every trial is a fresh process (hone: in a fresh workspace, so
   no repetition dedups against another), hone and pandas interleaved with the order
   rotating, IMPORT_ROUNDS pairs; figures are the median and range, with peak RSS (the
   child's ru_maxrss, from wait4) beside time;
4. ``data_import_10m`` (only when named: ``--only=data_import_10m``): 10,000,000 x 65 from
   a 6.7 GB CSV written here and deleted after, hone alone: it must complete with the
   same bounded peak RSS.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

import hone
import hone.data

if TYPE_CHECKING:
    import torch
    import torch.utils.data as torch_data
import rss
import trials
from hone.blobs import open_blob_store
from workloads import Sizes, emit, option, sizes_from_argv, timed


def _table(rows: int, width: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, width)).astype(np.float32)
    columns: dict[str, np.ndarray] = {f"f{i}": x[:, i] for i in range(width)}
    columns["label"] = rng.integers(0, 10, rows)
    return pa.table(columns)


def _version_bytes(version: hone.data.DatasetVersion, digests: set[str] | None = None) -> int:
    blobs = version.blobs
    chunks = {c.digest for c in version.manifest.chunks}
    if digests is not None:
        chunks -= digests
    return sum(blobs.size(d) for d in chunks) + blobs.size(version.id)


def append(workdir: Path, sizes: Sizes) -> None:
    rows = sizes.data_rows
    ws = hone.init(workdir / "append")
    pq.write_table(_table(rows, 64, 0), workdir / "base.parquet")
    pq.write_table(_table(rows // 100, 64, 1), workdir / "more.parquet")
    start = time.perf_counter()
    base = hone.data.import_dataset(
        "big", workdir / "base.parquet", label="label", split="train=0.9,test=0.1", workspace=ws
    )
    import_s = time.perf_counter() - start
    start = time.perf_counter()
    bigger = hone.data.append(base, workdir / "more.parquet")
    append_s = time.perf_counter() - start
    total = _version_bytes(bigger)
    new = _version_bytes(bigger, {c.digest for c in base.manifest.chunks})
    emit(
        {
            "bench": "data_append",
            "rows": rows,
            "appended": rows // 100,
            "import_s": import_s,
            "append_s": append_s,
            "time_ratio": append_s / import_s,
            "version_bytes": total,
            "new_bytes": new,
            "bytes_ratio": new / total,
        }
    )


def adapter(workdir: Path, sizes: Sizes) -> None:
    import torch

    rows = sizes.data_rows
    ws = hone.init(workdir / "adapter")
    x = np.random.default_rng(0).normal(size=(rows, 64)).astype(np.float32)
    y = np.random.default_rng(1).integers(0, 10, rows)
    np.savez(workdir / "adapter.npz", x=x, y=y)
    ds = hone.data.import_dataset("adapter", workdir / "adapter.npz", workspace=ws)

    start = time.perf_counter()
    batches = hone.data.loader(ds, "all", 256, seed=0)  # reads the split into memory once
    open_s = time.perf_counter() - start

    def batched_hone() -> int:
        seen = 0
        for xb, _ in batches:
            seen += len(xb)
        return seen

    def batched_numpy() -> int:
        order = np.random.default_rng([0, 0]).permutation(rows)
        seen = 0
        for start in range(0, rows, 256):
            idx = order[start : start + 256]
            xb, yb = torch.from_numpy(x[idx]), torch.from_numpy(y[idx])
            seen += len(xb) + 0 * len(yb)
        return seen

    class NumpyDataset(torch.utils.data.Dataset[tuple[torch.Tensor, torch.Tensor]]):
        def __len__(self) -> int:
            return len(x)

        def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
            return torch.from_numpy(x[i]), torch.as_tensor(y[i])

    per_sample = sizes.adapter_sample_rows  # per-sample DataLoaders: a bounded subset

    def per_sample_run(dataset: torch.utils.data.Dataset[tuple[torch.Tensor, torch.Tensor]]) -> int:
        subset = torch.utils.data.Subset(dataset, range(per_sample))
        return sum(len(b[0]) for b in torch.utils.data.DataLoader(subset, batch_size=256))

    results = {}
    for name, fn in (("loader", batched_hone), ("numpy_batched", batched_numpy)):
        fn()  # warm
        results[name] = rows / min(timed(fn) for _ in range(3))
    torch_ds = ds.torch("all")
    for name, dataset in (("torch_dataset", torch_ds), ("numpy_dataset", NumpyDataset())):
        results[name] = per_sample / min(
            _time_per_sample(per_sample_run, dataset) for _ in range(2)
        )
    emit(
        {
            "bench": "data_adapter",
            "rows": rows,
            "per_sample_rows": per_sample,
            "loader_samples_per_s": results["loader"],
            "numpy_batched_samples_per_s": results["numpy_batched"],
            "loader_ratio": results["loader"] / results["numpy_batched"],
            "open_s": open_s,
            "torch_dataset_samples_per_s": results["torch_dataset"],
            "numpy_dataset_samples_per_s": results["numpy_dataset"],
            "torch_dataset_ratio": results["torch_dataset"] / results["numpy_dataset"],
        }
    )


def _time_per_sample(
    run: Callable[[torch_data.Dataset[tuple[torch.Tensor, torch.Tensor]]], int],
    dataset: torch_data.Dataset[tuple[torch.Tensor, torch.Tensor]],
) -> float:
    return timed(lambda: run(dataset))


IMPORT_ROUNDS = 3  # interleaved hone/pandas pairs per import size (>= 3)
ROWS_1M, ROWS_10M, WIDE = 1_000_000, 10_000_000, 64


def import_throughput(workdir: Path, sizes: Sizes) -> None:
    """Import from CSV and Parquet at ``import_rows`` x 21 columns, then from CSV at
    1,000,000 x 65 (20,000 with --quick): hone and pandas read + to_parquet, each trial a
    fresh process (and hone a fresh workspace), interleaved, ``IMPORT_ROUNDS`` pairs."""
    rows = sizes.import_rows
    csv, parquet = workdir / "t.csv", workdir / "t.parquet"
    _write_sources(rows, 20, 2, csv=csv, parquet=parquet)
    out: dict[str, Any] = {"rows": rows, "columns": 21, "rounds": IMPORT_ROUNDS}
    for kind, source in (("csv", csv), ("parquet", parquet)):
        compared = _compare(workdir, source, rows, f"import {rows:,} x 21 {kind}")
        out[kind] = compared
        out[f"hone_{kind}_rows_per_s"] = compared["hone"]["rows_per_s"]["median"]
        out[f"pandas_{kind}_rows_per_s"] = compared["pandas"]["rows_per_s"]["median"]
    emit({"bench": "data_import", **out})
    wide = ROWS_1M if sizes.import_rows >= 100_000 else sizes.data_rows
    big = workdir / "wide.csv"
    _write_sources(wide, WIDE, 3, csv=big)
    compared = _compare(workdir, big, wide, f"import {wide:,} x {WIDE + 1} csv")
    big.unlink()
    emit(_headline("data_import_1m", wide, big_bytes=compared.pop("bytes"), compared=compared))


def import_huge(workdir: Path, sizes: Sizes) -> None:
    """10,000,000 x 65 from a 6.7 GB CSV written here (deleted after): hone alone (pandas
    would hold ~17 GiB), a fresh process and workspace per trial; peak RSS beside time."""
    rows = ROWS_10M if sizes.import_rows >= 100_000 else sizes.data_rows
    big = workdir / "huge.csv"
    _write_sources(rows, WIDE, 4, csv=big)
    try:
        compared = _compare(workdir, big, rows, f"import {rows:,} x {WIDE + 1} csv", pandas=False)
    finally:
        big.unlink(missing_ok=True)
    emit(_headline("data_import_10m", rows, big_bytes=compared.pop("bytes"), compared=compared))


def _headline(name: str, rows: int, big_bytes: int, compared: dict[str, Any]) -> dict[str, Any]:
    return {
        "bench": name,
        "rows": rows,
        "columns": WIDE + 1,
        "source_bytes": big_bytes,
        "rounds": IMPORT_ROUNDS,
        **compared,
    }


def _write_sources(
    rows: int, width: int, seed: int, csv: Path | None = None, parquet: Path | None = None
) -> None:
    """The benchmark's table, written 500,000 rows at a time (memory stays small even for
    10 million rows): float32 normals and a label of 10 classes."""
    step = 500_000
    first = _table(min(rows, step), width, seed)
    csv_out = pcsv.CSVWriter(str(csv), first.schema) if csv else None
    parquet_out = pq.ParquetWriter(str(parquet), first.schema) if parquet else None
    try:
        for start in range(0, rows, step):
            part = first if start == 0 else _table(min(step, rows - start), width, seed + start)
            if csv_out:
                csv_out.write_table(part)
            if parquet_out:
                parquet_out.write_table(part)
    finally:
        if csv_out:
            csv_out.close()
        if parquet_out:
            parquet_out.close()


def _compare(
    workdir: Path, source: Path, rows: int, label: str, pandas: bool = True
) -> dict[str, Any]:
    """hone (and pandas) over ``source``, interleaved rounds of fresh processes: for each
    side the import's own seconds, rows/s, spawn-to-exit seconds and peak RSS (median,
    range, values), and the per-round ratios hone/pandas."""

    def side(name: str) -> Callable[[int], trials.Trial]:
        def run(round_: int) -> trials.Trial:
            target = workdir / f"{name}-{round_}"
            cmd = [
                sys.executable,
                __file__,
                str(workdir),
                f"--child={name}",
                f"--source={source}",
                f"--target={target}",
            ]
            try:
                return trials.spawn(cmd, name, Path(__file__).parent)
            finally:
                shutil.rmtree(target, ignore_errors=True)
                (target.with_suffix(".parquet")).unlink(missing_ok=True)

        return run

    sides = {"hone": side("hone"), **({"pandas": side("pandas")} if pandas else {})}
    rounds = trials.interleaved(sides, IMPORT_ROUNDS, label)
    seconds = {name: [r[name].results["child"]["seconds"] for r in rounds] for name in sides}
    out: dict[str, Any] = {"bytes": source.stat().st_size}
    for name in sides:
        out[name] = {
            "seconds": trials.spread(seconds[name]),
            "rows_per_s": trials.spread([rows / t for t in seconds[name]]),
            "trial_wall_s": trials.side_spread(rounds, name, lambda t: t.wall_s),
            # the child's own VmHWM: wait4's ru_maxrss starts at this process's peak
            "peak_rss_mib": trials.side_spread(rounds, name, lambda t: _child(t, "peak_rss_mib")),
            "wait4_peak_rss_mib": trials.side_spread(rounds, name, lambda t: t.peak_rss_mib),
            "baseline_rss_mib": trials.side_spread(
                rounds, name, lambda t: _child(t, "baseline_rss_mib")
            ),
        }
    if pandas:
        out["speed_ratio"] = trials.pair_ratios(
            rounds,
            lambda r: (
                r["pandas"].results["child"]["seconds"] / r["hone"].results["child"]["seconds"]
            ),
        )
        out["rss_ratio"] = trials.pair_ratios(
            rounds,
            lambda r: _child(r["hone"], "peak_rss_mib") / _child(r["pandas"], "peak_rss_mib"),
        )
    versions = {r["hone"].results["child"]["version"] for r in rounds}
    assert len(versions) == 1, f"one source, one version id: got {versions}"
    out["hone"]["blobs"] = rounds[0]["hone"].results["child"]["blobs"]
    return out


def _child(trial: trials.Trial, key: str) -> float:
    return float(trial.results["child"][key])


def child() -> None:
    """One trial in this fresh process: ``--child=hone|pandas --source=PATH --target=DIR``.
    The import is timed from here (interpreter start and imports excluded); the parent
    reads the whole process's wall time and peak RSS."""
    side, source, target = option("child"), Path(str(option("source"))), Path(str(option("target")))
    baseline = rss.rss_mib()
    if side == "hone":
        ws = hone.init(target)
        start = time.perf_counter()
        version = hone.data.import_dataset("bench", source, label="label", workspace=ws)
        seconds = time.perf_counter() - start
        blobs = open_blob_store(ws.blob_uri)
        extra = {"version": version.id, "blobs": sum(1 for _ in blobs.digests())}
    else:
        import pandas as pd

        start = time.perf_counter()
        frame = pd.read_parquet(source) if source.suffix == ".parquet" else pd.read_csv(source)
        frame.to_parquet(target.with_suffix(".parquet"))
        seconds = time.perf_counter() - start
        extra = {"version": "", "blobs": 0}
    emit(
        {
            "bench": "child",
            "seconds": seconds,
            "baseline_rss_mib": baseline,  # after imports, before the work
            "peak_rss_mib": rss.peak_mib(),  # VmHWM: this process's own, from exec on
            **extra,
        }
    )


def main() -> None:
    if option("child"):
        child()
        return
    benches: dict[str, Callable[[Path, Sizes], None]] = {
        "data_append": append,
        "data_adapter": adapter,
        "data_import": import_throughput,
        "data_import_10m": import_huge,
    }
    only = option("only")
    if only is not None and only not in benches:
        raise SystemExit(f"--only={only}: no such benchmark (one of {', '.join(benches)})")
    workdir = Path(sys.argv[1])
    workdir.mkdir(parents=True, exist_ok=True)
    sizes = sizes_from_argv()
    for name, bench in benches.items():
        if only == name or (only is None and name != "data_import_10m"):
            bench(workdir, sizes)


if __name__ == "__main__":
    main()
