"""Sample-library benchmarks; prints RESULT lines (run_all.py collects them).

    python benchmarks/bench_data.py WORKDIR [--quick] [--only=NAME]

1. append 1% new rows to a 1,000,000-row tabular version: new bytes against the version's
   total, wall time against the full import;
2. iterate a 1,000,000 x 64 float32 split in batches of 256 through hone's loader, and
   through a DataLoader over ds.torch(), each beside the same access to a plain in-memory
   NumPy array;
3. import throughput from CSV and Parquet, beside pandas.read_csv + DataFrame.to_parquet.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

import hone
import hone.data

if TYPE_CHECKING:
    import torch
    import torch.utils.data as torch_data
from hone.blobs import open_blob_store
from workloads import Sizes, emit, run_selected, timed


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


def import_throughput(workdir: Path, sizes: Sizes) -> None:
    import pandas as pd

    rows = sizes.import_rows
    table = _table(rows, 20, 2)
    pcsv.write_csv(table, workdir / "t.csv")
    pq.write_table(table, workdir / "t.parquet")
    ws = hone.init(workdir / "import")
    out: dict[str, float] = {}
    for kind in ("csv", "parquet"):
        source = workdir / f"t.{kind}"
        runs = []
        for i in range(3):  # a new name each time: every import does the whole work
            runs.append(timed(_importer(f"{kind}{i}", source, ws)))
        out[f"hone_{kind}_rows_per_s"] = rows / min(runs)

    def pandas_csv() -> None:
        pd.read_csv(workdir / "t.csv").to_parquet(workdir / "pandas.parquet")

    def pandas_parquet() -> None:
        pd.read_parquet(workdir / "t.parquet").to_parquet(workdir / "pandas2.parquet")

    out["pandas_csv_rows_per_s"] = rows / min(timed(pandas_csv) for _ in range(3))
    out["pandas_parquet_rows_per_s"] = rows / min(timed(pandas_parquet) for _ in range(3))
    blobs = open_blob_store(ws.blob_uri)
    emit(
        {
            "bench": "data_import",
            "rows": rows,
            "columns": 21,
            **out,
            "blob_count": sum(1 for _ in blobs.digests()),
        }
    )


def _importer(name: str, source: Path, ws: hone.Workspace) -> Callable[[], object]:
    return lambda: hone.data.import_dataset(name, source, label="label", workspace=ws)


def main() -> None:
    run_selected({"data_append": append, "data_adapter": adapter, "data_import": import_throughput})


if __name__ == "__main__":
    main()
