"""HTTP serving benchmark; prints RESULT lines (run_all.py collects them).

    python benchmarks/bench_serve.py WORKDIR [--quick] [--only=serve_http,serve_memory]
                                     [--pairs=N] [--mlflow-python=PATH]

The digits CNN of bench_models.py (builtin:cnn, trained ``model_epochs`` epochs, registered
with its verified ONNX export) served over HTTP on loopback, one uvicorn worker a side,
driven by ``wrk`` (Debian's package; a Lua script sets the POST body), never by a Python
client (one saturates long before these servers do). The request is one digits row (64
float64 pixels, raw: preprocessing is inside every side's graph) per POST.

``serve_http`` sides, each a fresh server process per round, the order rotating:

- ``hone``: ``hone serve digits@1`` (batching on, every prediction recorded to the
  workspace's SQLite store through the journal), body ``{"instances": [[...]]}``.
- ``hone_norecord``: the same with ``--no-record``: what recording costs.
- ``bare``: ``bare_fastapi.py``, a FastAPI app on uvicorn with the same settings (uvloop,
  httptools, no access log) whose endpoint reads the body and returns a constant answer of
  the size of hone's (the HTTP ceiling: no parsing, no model).
- ``mlflow`` (with ``--mlflow-python``): ``mlflow models serve -m models:/digits/1
  --env-manager local -w 1`` of the same ONNX file (logged by bench_models.py's
  ``mlflow_log`` child; MLflow's ONNX flavour through pyfunc, one onnxruntime thread),
  body ``{"inputs": {"input": [[...]]}}``.

A round, per side: start the server, wait for it to answer, warm it (``wrk`` 1 s at 16
connections), then ``wrk -t1 -cC -dD --latency`` for C = 1 and 16 (D = ``serve_seconds``):
requests/s, p50 and p99 latency, non-2xx answers (must be 0); the server's peak RSS
(VmHWM); stop it (SIGTERM: hone writes every recorded prediction first). Figures: median
[range] over rounds; ratios per round, then median [range]. The in-process onnxruntime
session's own throughput (one thread, batch 1, ``predict_calls`` calls) is measured in a
fresh process each round, for scale.

``serve_memory``: one ``hone serve`` (recording on) sent ``memory_predictions`` predictions
(16 instances a request, ``wrk`` at 16 connections until ``/metrics`` counts them all);
the server's resident memory sampled each second, its peak (VmHWM), the memory queue's
and the journal's state from ``/metrics``, and after SIGTERM the rows in the store, which
must equal the predictions answered.

Aims (issue 10): hone at 16 connections >= 5x MLflow's requests/s with a lower p99; hone
>= 60% of the bare ceiling's requests/s; recording on / off >= 0.9; memory bounded.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trials
from processes import children, free_port, status_kib
from workloads import Sizes, emit, option, run_selected

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SIDES = ("hone", "hone_norecord", "bare")
CONNECTIONS = (1, 16)
AIMS = {"vs_mlflow_c16": 5.0, "vs_bare_c16": 0.6, "record_vs_norecord_c16": 0.9}
ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}


def _get(url: str, timeout: float = 2.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as reply:
        body: bytes = reply.read()
        return body


def _post(url: str, body: bytes) -> tuple[int, bytes]:
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class Server:
    """A server process on loopback, started from nothing."""

    def __init__(self, cmd: list[str], port: int, ready: str, env: dict[str, str], log: Path):
        self.port, self.log = port, log
        self._out = log.open("w")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self._out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 180
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(
                    f"{cmd[:4]} exited {self.proc.returncode}: {log.read_text()[-2000:]}"
                )
            try:
                _get(f"http://127.0.0.1:{port}{ready}")
                return
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise SystemExit(f"{cmd[:4]} did not answer in 180 s") from None
                time.sleep(0.1)

    def peak_rss_mib(self) -> float:
        """The peak resident memory of the server and its children (MLflow forks uvicorn)."""
        total = 0.0
        for pid in [self.proc.pid, *children(self.proc.pid)]:
            total += status_kib(pid, "VmHWM") / 1024
        return total

    def rss_mib(self) -> float:
        return sum(status_kib(p, "VmRSS") for p in [self.proc.pid, *children(self.proc.pid)]) / 1024

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()
        return self.proc.returncode


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not match:
        raise SystemExit(f"wrk printed a latency {text!r} this script cannot read")
    return float(match.group(1)) * _UNITS[match.group(2)]


def wrk(url: str, script: Path, connections: int, seconds: float) -> dict[str, float]:
    """One wrk run: requests/s, p50/p99 latency (ms), requests, non-2xx answers."""
    done = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    out = done.stdout
    if done.returncode != 0:
        raise SystemExit(f"wrk failed: {done.stderr or out}")
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    p50 = re.search(r"\s50%\s+(\S+)", out)
    p99 = re.search(r"\s99%\s+(\S+)", out)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if not (rate and total and p50 and p99):
        raise SystemExit(f"cannot read wrk's output:\n{out}")
    return {
        "rps": float(rate.group(1)),
        "requests": float(total.group(1)),
        "p50_ms": _ms(p50.group(1)),
        "p99_ms": _ms(p99.group(1)),
        "non2xx": float(bad.group(1)) if bad else 0.0,
        "socket_errors": float(sum(int(g) for g in errors.groups())) if errors else 0.0,
    }


def _lua(path: Path, body: bytes) -> Path:
    text = body.decode().replace("\\", "\\\\").replace('"', '\\"')
    path.write_text(
        'wrk.method = "POST"\n'
        f'wrk.body = "{text}"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    return path


def _prepare(workdir: Path, sizes: Sizes, env: dict[str, str]) -> dict[str, Any]:
    """bench_models.py's preparation: the trained, registered digits CNN, its ONNX file and
    test rows; with MLflow, the same file logged and registered in MLflow's store."""
    if not (workdir / "prepared.json").exists():
        trials.spawn(
            [
                sys.executable,
                str(HERE / "bench_models.py"),
                str(workdir),
                "--child=prepare",
                f"--epochs={sizes.model_epochs}",
            ],
            "prepare",
            HERE,
            env=env,
        )
    prepared: dict[str, Any] = json.loads((workdir / "prepared.json").read_text())
    mlflow = option("mlflow-python")
    if mlflow and not (workdir / "mlflow").exists():
        logged = trials.spawn(
            [mlflow, str(HERE / "bench_models.py"), str(workdir), "--child=mlflow_log"],
            "mlflow",
            HERE,
            env=env,
        )
        if not logged.results["mlflow_log"]["same_graph"]:
            raise SystemExit("serve_http: MLflow's stored model.onnx is not the same file")
    return prepared


def _start(side: str, workdir: Path, prepared: dict[str, Any], env: dict[str, str]) -> Server:
    port = free_port()
    hone = [sys.executable, "-m", "hone.cli.main", "-w", prepared["ws"], "serve", prepared["ref"]]
    common = ["--port", str(port), "--threads", "1"]
    log = workdir / f"server-{side}.log"
    if side == "hone":
        return Server([*hone, *common], port, "/healthz", env, log)
    if side == "hone_norecord":
        return Server([*hone, *common, "--no-record"], port, "/healthz", env, log)
    if side == "bare":
        cmd = [
            sys.executable,
            str(HERE / "bare_fastapi.py"),
            str(port),
            str(workdir / "answer.json"),
        ]
        return Server(cmd, port, "/healthz", env, log)
    mlflow = str(option("mlflow-python"))
    cmd = [
        str(Path(mlflow).parent / "mlflow"),
        *("models", "serve", "-m", "models:/digits/1", "-h", "127.0.0.1", "-p", str(port)),
        *("--env-manager", "local", "-w", "1"),
    ]
    store = f"sqlite:///{workdir / 'mlflow' / 'mlflow.db'}"
    # MLflow runs `uvicorn` from PATH: its own environment's.
    path = f"{Path(mlflow).parent}{os.pathsep}{env.get('PATH', '')}"
    return Server(cmd, port, "/ping", {**env, "MLFLOW_TRACKING_URI": store, "PATH": path}, log)


def _session_rate(prepared: dict[str, Any], calls: int, env: dict[str, str]) -> float:
    """The in-process onnxruntime session's predictions/s at batch 1, one thread."""
    code = (
        "import sys, time, numpy as np, onnxruntime as ort\n"
        "o = ort.SessionOptions(); o.intra_op_num_threads = 1\n"
        f"s = ort.InferenceSession({prepared['onnx']!r}, o, providers=['CPUExecutionProvider'])\n"
        f"x = np.load({str(Path(prepared['onnx']).parent / 'rows.npy')!r})[:1]\n"
        "for _ in range(200): s.run(None, {'input': x})\n"
        f"t = time.perf_counter()\nfor _ in range({calls}): s.run(None, {{'input': x}})\n"
        f"print({calls} / (time.perf_counter() - t))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if done.returncode:
        raise SystemExit(done.stderr)
    return float(done.stdout.strip())


def serve_http(workdir: Path, sizes: Sizes) -> None:
    env = {**os.environ, **ENV}
    prepared = _prepare(workdir, sizes, env)
    import numpy as np

    row = np.load(workdir / "rows.npy")[:1].tolist()
    bodies = {
        "hone": json.dumps({"instances": row}).encode(),
        "mlflow": json.dumps({"inputs": {"input": row}}).encode(),
    }
    sides = [*SIDES, *(["mlflow"] if option("mlflow-python") else [])]
    # The bare side answers with hone's own answer to this row, byte for byte.
    probe = _start("hone_norecord", workdir, prepared, env)
    try:
        status, answer = _post(
            f"http://127.0.0.1:{probe.port}/v1/models/digits/predict", bodies["hone"]
        )
    finally:
        probe.stop()
    if status != 200:
        raise SystemExit(f"hone refused the benchmark's request: {answer[:300]!r}")
    (workdir / "answer.json").write_bytes(answer)
    scripts = {
        side: _lua(workdir / f"{side}.lua", bodies["mlflow" if side == "mlflow" else "hone"])
        for side in sides
    }
    paths = {
        side: "/invocations" if side == "mlflow" else "/v1/models/digits/predict" for side in sides
    }
    seconds = sizes.serve_seconds
    rounds: list[dict[str, dict[str, Any]]] = []
    session_rates: list[float] = []
    for r in range(sizes.cheap_pairs):
        shift = r % len(sides)
        row_results: dict[str, dict[str, Any]] = {}
        for side in sides[shift:] + sides[:shift]:
            server = _start(side, workdir, prepared, env)
            url = f"http://127.0.0.1:{server.port}{paths[side]}"
            try:
                wrk(url, scripts[side], 16, 1)  # warm
                found: dict[str, Any] = {
                    f"c{c}": wrk(url, scripts[side], c, seconds) for c in CONNECTIONS
                }
                found["peak_rss_mib"] = server.peak_rss_mib()
            finally:
                code = server.stop()
            found["exit"] = code
            bad = sum(
                found[f"c{c}"]["non2xx"] + found[f"c{c}"]["socket_errors"] for c in CONNECTIONS
            )
            if bad:
                raise SystemExit(
                    f"serve_http: {side} gave {bad:.0f} failed answers; see {server.log}"
                )
            row_results[side] = found
            print(
                f"  serve round {r + 1}/{sizes.cheap_pairs} {side}: "
                + ", ".join(
                    f"c{c} {found[f'c{c}']['rps']:,.0f} req/s p99 {found[f'c{c}']['p99_ms']:.1f} ms"
                    for c in CONNECTIONS
                ),
                flush=True,
            )
        rounds.append(row_results)
        session_rates.append(_session_rate(prepared, sizes.predict_calls, env))

    def spread_of(side: str, key: Callable[[dict[str, Any]], float]) -> dict[str, Any]:
        return trials.spread([key(row[side]) for row in rounds])

    out: dict[str, Any] = {
        "bench": "serve_http",
        "model": prepared["ref"],
        "seconds": seconds,
        "rounds": sizes.cheap_pairs,
        "wrk": "wrk -t1 -cC -dD --latency (one thread), one instance per request",
        "aims": AIMS,
        "sides": {},
        "ratios": {},
        "session_predictions_per_s": trials.spread(session_rates),
    }
    for side in sides:
        out["sides"][side] = {
            **{
                f"c{c}_{k}": trials.spread([float(row[side][f"c{c}"][k]) for row in rounds])
                for c in CONNECTIONS
                for k in ("rps", "p50_ms", "p99_ms")
            },
            "peak_rss_mib": spread_of(side, lambda s: float(s["peak_rss_mib"])),
        }

    def ratio(a: str, b: str, c: int) -> dict[str, Any]:
        return trials.spread([row[a][f"c{c}"]["rps"] / row[b][f"c{c}"]["rps"] for row in rounds])

    for c in CONNECTIONS:
        out["ratios"][f"vs_bare_c{c}"] = ratio("hone", "bare", c)
        out["ratios"][f"record_vs_norecord_c{c}"] = ratio("hone", "hone_norecord", c)
        if "mlflow" in sides:
            out["ratios"][f"vs_mlflow_c{c}"] = ratio("hone", "mlflow", c)
            out["ratios"][f"p99_vs_mlflow_c{c}"] = trials.spread(
                [
                    row["hone"][f"c{c}"]["p99_ms"] / row["mlflow"][f"c{c}"]["p99_ms"]
                    for row in rounds
                ]
            )
    out["passed"] = {
        name: out["ratios"][name]["median"] >= aim
        for name, aim in AIMS.items()
        if name in out["ratios"]
    }
    if "mlflow" in sides:
        out["passed"]["p99_below_mlflow_c16"] = out["ratios"]["p99_vs_mlflow_c16"]["median"] < 1
    emit(out)


def serve_memory(workdir: Path, sizes: Sizes) -> None:
    env = {**os.environ, **ENV}
    prepared = _prepare(workdir, sizes, env)
    import numpy as np

    per_request = 16
    rows = np.load(workdir / "rows.npy")[:per_request].tolist()
    script = _lua(workdir / "memory.lua", json.dumps({"instances": rows}).encode())
    target = sizes.memory_predictions
    import sqlite3

    def stored_rows() -> int:
        db = sqlite3.connect(Path(prepared["ws"]) / "hone.db")
        try:
            return int(db.execute("SELECT count(*) FROM predictions").fetchone()[0])
        finally:
            db.close()

    before = stored_rows()
    server = _start("hone", workdir, prepared, env)
    base = f"http://127.0.0.1:{server.port}"

    def metric(name: str) -> float:
        text = _get(f"{base}/metrics").decode()
        found = re.search(rf"^{re.escape(name)} ([\d.e+]+)$", text, re.M)
        return float(found.group(1)) if found else 0.0

    samples: list[tuple[float, float, float]] = []  # (seconds, predictions, RSS MiB)
    started = time.perf_counter()
    sent = 0.0
    try:
        wrk(f"{base}/v1/models/digits/predict", script, 16, 1)
        while metric("hone_predictions_recorded_total") < target:
            result = wrk(f"{base}/v1/models/digits/predict", script, 16, 5)
            if result["non2xx"] or result["socket_errors"]:
                raise SystemExit("serve_memory: failed answers")
            sent += result["requests"] * per_request
            samples.append(
                (
                    time.perf_counter() - started,
                    metric("hone_predictions_recorded_total"),
                    server.rss_mib(),
                )
            )
            print(
                f"  memory: {samples[-1][1]:,.0f} predictions, RSS {samples[-1][2]:.0f} MiB",
                flush=True,
            )
        recorded = metric("hone_predictions_recorded_total")
        deadline = time.monotonic() + 120
        while metric("hone_predictions_written_total") < recorded and time.monotonic() < deadline:
            time.sleep(0.5)
        written = metric("hone_predictions_written_total")
        queued_max = metric("hone_predictions_queued")
        peak = server.peak_rss_mib()
        final = server.rss_mib()
    finally:
        code = server.stop()
    stored = stored_rows() - before
    first_rss = samples[0][2] if samples else 0.0
    emit(
        {
            "bench": "serve_memory",
            "target": target,
            "recorded": recorded,
            "written_before_stop": written,
            "stored_after_stop": stored,
            "exit": code,
            "peak_rss_mib": peak,
            "rss_after_first_5s_mib": first_rss,
            "rss_at_end_mib": final,
            "queued_at_end": queued_max,
            "seconds": time.perf_counter() - started,
            "samples": samples,
            "all_stored": stored == recorded,
        }
    )


if __name__ == "__main__":
    run_selected({"serve_http": serve_http, "serve_memory": serve_memory})
