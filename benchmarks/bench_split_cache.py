"""The machine's split cache: two processes each build a Loader over the same split.

    python benchmarks/bench_split_cache.py WORKDIR [--quick] [--rounds=N]

A version of 200,000 x 64 float32 features and a label (20,000 with --quick) is imported
once, split train=0.9,test=0.1. A *trial* starts two fresh processes that, once both have
imported their modules, build ``hone.data.loader(version, "train", 256)`` at the same moment
and take its first batch, like two ranks of a job on one machine. Three sides:

- ``off``: ``HONE_SPLIT_CACHE_BYTES=0``, what every rank did before: read, hash and decode
  every chunk, a private copy each;
- ``cold``: the cache on and empty (its folder removed first): one process decodes and
  writes the file, the other waits for it, both map it;
- ``warm``: the cache on and its file written by an earlier trial (a second job, or a
  restarted one): both only map it.

Sides are interleaved and rotate their order each round. Per process: seconds from the
common start to its first batch, peak RSS (VmHWM, reset after imports) and, at the first
batch with both processes alive, its memory from /proc/self/smaps_rollup: Rss, Pss (shared
pages divided among the processes mapping them) and Private (its own pages). The job's
figure is the later of its two processes. Median and range over the rounds.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

import hone
import hone.data
import rss
from workloads import emit, option, sizes_from_argv

HERE = Path(__file__).resolve().parent
ROWS, QUICK_ROWS, WIDTH = 200_000, 20_000, 64
SIDES = ("off", "cold", "warm")
PROCESSES = 2


def main() -> None:
    if option("child") is not None:
        child()
        return
    workdir = Path(sys.argv[1])
    workdir.mkdir(parents=True, exist_ok=True)
    quick = sizes_from_argv().data_rows < 1_000_000
    rows = QUICK_ROWS if quick else ROWS
    rounds = int(option("rounds") or (1 if quick else 5))
    home = workdir / "ws"
    shutil.rmtree(home, ignore_errors=True)
    ws = hone.init(home)
    rng = np.random.default_rng(0)
    np.savez(
        workdir / "split_cache.npz",
        x=rng.normal(size=(rows, WIDTH)).astype(np.float32),
        y=rng.integers(0, 10, rows),
    )
    version = hone.data.import_dataset(
        "cached", workdir / "split_cache.npz", split="train=0.9,test=0.1", workspace=ws
    )
    results: dict[str, list[dict[str, Any]]] = {side: [] for side in SIDES}
    for r in range(rounds):
        order = SIDES[r % len(SIDES) :] + SIDES[: r % len(SIDES)]
        for side in order:
            if side == "cold":
                shutil.rmtree(home / "cache", ignore_errors=True)
            if side == "warm" and not list((home / "cache" / "splits").glob("*.arrow")):
                version.to_numpy("train", raw=True, shared=True)  # an earlier job wrote it
            trial = _trial(workdir, home, version.ref, side)
            results[side].append(trial)
            job_s = max(p["first_batch_s"] for p in trial["processes"])
            private = "/".join(f"{p['private_mib']:.0f}" for p in trial["processes"])
            print(
                f"  split cache round {r + 1}/{rounds} {side}: first batch {job_s:.2f} s, "
                f"private {private} MiB",
                flush=True,
            )
    summary = {side: _summary(trials) for side, trials in results.items()}
    emit(
        {
            "bench": "split_cache",
            "rows": version.splits["train"],
            "features": WIDTH,
            "processes": PROCESSES,
            "rounds": rounds,
            **summary,
        }
    )
    _print(summary, version.splits["train"], rounds)


def _trial(workdir: Path, home: Path, ref: str, side: str) -> dict[str, Any]:
    """Two processes, started together once both are ready; their RESULT lines."""
    sync = workdir / "sync"
    shutil.rmtree(sync, ignore_errors=True)
    sync.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    env["HONE_SPLIT_CACHE_BYTES"] = "0" if side == "off" else str(8 << 30)
    children = [
        subprocess.Popen(
            [
                sys.executable,
                __file__,
                str(workdir),
                f"--child={i}",
                f"--home={home}",
                f"--ref={ref}",
                f"--sync={sync}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=HERE,
        )
        for i in range(PROCESSES)
    ]
    _wait_for(sync, "ready", PROCESSES, children)
    (sync / "go").touch()
    processes = []
    for proc in children:
        out, err = proc.communicate(timeout=600)
        if proc.returncode != 0:
            raise RuntimeError(f"a {side} child exited with {proc.returncode}:\n{err[-3000:]}")
        line = next(s for s in out.splitlines() if s.startswith("RESULT "))
        processes.append(json.loads(line[len("RESULT ") :]))
    return {"processes": processes}


def child() -> None:
    """One process of a trial: import, report ready, wait for go, build the loader and take
    its first batch; measure while the other process is alive too."""
    me, sync = option("child"), Path(str(option("sync")))
    version = hone.data.get(str(option("ref")), workspace=str(option("home")))
    chunks = {c.digest for c in version.manifest.chunks}
    decoded: list[str] = []
    store = type(version.blobs)
    opener = store.open

    def counted(blobs: Any, digest: str) -> Any:
        if digest in chunks:
            decoded.append(digest)
        return opener(blobs, digest)

    store.open = counted  # type: ignore[method-assign,assignment]
    importlib.import_module("hone.data.torch_adapter")  # and torch: a job has them already

    rss.reset_peak()
    baseline = rss.rss_mib()
    (sync / f"ready-{me}").touch()
    _wait_for(sync, "go", 1)
    start = time.perf_counter()
    loader = hone.data.loader(version, "train", 256, seed=0)
    x, _ = next(iter(loader))
    first_batch_s = time.perf_counter() - start
    memory = _rollup()
    (sync / f"measured-{me}").touch()
    _wait_for(sync, "measured", PROCESSES)  # neither unmaps before both have measured
    emit(
        {
            "bench": "child",
            "first_batch_s": first_batch_s,
            "decoded": bool(decoded),
            "baseline_rss_mib": baseline,
            "peak_rss_mib": rss.peak_mib(),
            "peak_growth_mib": rss.peak_mib() - baseline,
            **memory,
            "batch": int(x.shape[0]),
        }
    )


def _rollup() -> dict[str, float]:
    """Rss, Pss and Private (clean + dirty) of the whole process, in MiB."""
    fields: dict[str, float] = {}
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines()[1:]:
        name, _, rest = line.partition(":")
        if rest.strip().endswith("kB"):
            fields[name] = int(rest.split()[0]) / 1024
    return {
        "rss_mib": fields.get("Rss", 0.0),
        "pss_mib": fields.get("Pss", 0.0),
        "private_mib": fields.get("Private_Clean", 0.0) + fields.get("Private_Dirty", 0.0),
    }


def _wait_for(
    sync: Path, stage: str, count: int, children: list[subprocess.Popen[str]] | None = None
) -> None:
    deadline = time.monotonic() + 300
    while len(list(sync.glob(f"{stage}*"))) < count:
        for proc in children or []:
            if proc.poll() is not None:
                _, err = proc.communicate()
                raise RuntimeError(f"a child exited with {proc.returncode}:\n{err[-3000:]}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{count} processes never reached {stage}")
        time.sleep(0.002)


def _spread(values: list[float]) -> dict[str, Any]:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "values": values,
    }


def _summary(trials: list[dict[str, Any]]) -> dict[str, Any]:
    """Per side: the job's time to first batch (its later process), and per-process figures
    over every process of every round."""
    each = [p for t in trials for p in t["processes"]]
    return {
        "job_first_batch_s": _spread(
            [max(p["first_batch_s"] for p in t["processes"]) for t in trials]
        ),
        "first_batch_s": _spread([p["first_batch_s"] for p in each]),
        "peak_growth_mib": _spread([p["peak_growth_mib"] for p in each]),
        "rss_mib": _spread([p["rss_mib"] for p in each]),
        "pss_mib": _spread([p["pss_mib"] for p in each]),
        "private_mib": _spread([p["private_mib"] for p in each]),
        "decoders_per_trial": _spread([sum(p["decoded"] for p in t["processes"]) for t in trials]),
    }


def _print(summary: dict[str, Any], rows: int, rounds: int) -> None:
    print(
        f"\n{PROCESSES} processes, loader over {rows:,} x {WIDTH} float32, {rounds} rounds "
        "(median [min-max]; memory per process, MiB)"
    )
    header = ("side", "job first batch s", "peak RSS growth", "Rss", "Pss", "Private", "decoders")
    print("  ".join(f"{h:>18}" for h in header))
    keys = ("job_first_batch_s", "peak_growth_mib", "rss_mib", "pss_mib", "private_mib")
    for side, figures in summary.items():
        cells = [side]
        for key in keys:
            s = figures[key]
            digits = 3 if key.endswith("_s") else 0
            cells.append(f"{s['median']:.{digits}f} [{s['min']:.{digits}f}-{s['max']:.{digits}f}]")
        cells.append(f"{figures['decoders_per_trial']['median']:.0f}")
        print("  ".join(f"{c:>18}" for c in cells))


if __name__ == "__main__":
    main()
