"""The quickstart's second half: the champion served, production traffic that has drifted,
labels coming back, the loop retraining and promoting a challenger, and the lift measured.

Production here is *shifted*: the digits arrive with inverted contrast (ink light on a dark
page: 16 - pixel) and a little sensor noise (Gaussian, sigma 0.5, clipped to 0..16), a change
the champion never saw. The first wave of traffic is the train and validation rows so
shifted; 80% of its predictions get their true label back (as a labeling team would send
them, through POST /v1/feedback). The loop harvests them into a new dataset version, trains
a challenger with the champion's recipe and params, and promotes it if it beats the champion
on the freshest labeled rows. The second wave is the test rows, shifted the same way: rows
no model trained on in any form, answered by whichever version the server holds then.
"""

from __future__ import annotations

import math
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from hone.cli.output import console
from hone.config import Workspace
from hone.errors import HoneError

__all__ = ["LiveLoop", "live_loop", "shift"]

#: Instances per request: traffic as many small clients send it.
PER_REQUEST = 4
LABELED_SHARE = 0.8
NOISE = 0.5


def shift(rows: np.ndarray, seed: int) -> np.ndarray:
    """Production's drift: inverted contrast plus a little noise, pixels kept in 0..16."""
    rng = np.random.default_rng(seed)
    noisy = 16.0 - np.asarray(rows, np.float64) + rng.normal(0.0, NOISE, rows.shape)
    return np.clip(noisy, 0.0, 16.0)


@dataclass
class LiveLoop:
    before: float  # the champion's live accuracy on the first wave's labeled traffic
    after: float  # the live accuracy on the second wave
    version_before: int
    version_after: int
    requests: int
    predictions: int
    labeled: int
    loop: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "live_accuracy_before": self.before,
            "live_accuracy_after": self.after,
            "version_before": self.version_before,
            "version_after": self.version_after,
            "requests": self.requests,
            "predictions": self.predictions,
            "labeled": self.labeled,
            "loop": self.loop,
        }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Server:
    def __init__(self, ws: Workspace) -> None:
        import httpx

        port = _free_port()
        self.log = ws.home / "quickstart-serve.log"
        self._log = self.log.open("w")
        env = {**os.environ, "HONE_HOME": str(ws.home), "PYTHONUNBUFFERED": "1"}
        env.pop("HONE_SERVE_TOKEN", None)
        self.proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "hone.cli.main", "serve", "digits@champion"),
                *("--port", str(port), "--reload-every", "0.5"),
            ],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{port}"
        self.client = httpx.Client(base_url=self.url, timeout=60)
        deadline = time.monotonic() + 120
        while True:
            if self.proc.poll() is not None:
                raise HoneError(f"the model server exited: see {self.log}")
            try:
                if self.client.get("/healthz").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise HoneError(f"the model server did not start in 120 s: see {self.log}")
            time.sleep(0.1)

    def send(self, rows: np.ndarray) -> tuple[list[str], list[Any], list[int]]:
        """Every row predicted, ``PER_REQUEST`` per request: (request ids, labels, versions)."""
        ids: list[str] = []
        labels: list[Any] = []
        versions: list[int] = []
        for start in range(0, len(rows), PER_REQUEST):
            reply = self.client.post(
                "/v1/models/digits/predict",
                json={"instances": rows[start : start + PER_REQUEST].tolist()},
            )
            if reply.status_code != 200:
                raise HoneError(f"the model server refused traffic: {reply.text[:300]}")
            body = reply.json()
            for p in body["predictions"]:
                ids.append(p["request_id"])
                labels.append(p["label"])
                versions.append(body["version"])
        return ids, labels, versions

    def label(self, ids: list[str], truth: np.ndarray) -> None:
        for start in range(0, len(ids), 500):
            reply = self.client.post(
                "/v1/feedback",
                json=[
                    {"request_id": rid, "label": int(t)}
                    for rid, t in zip(
                        ids[start : start + 500], truth[start : start + 500], strict=True
                    )
                ],
            )
            if reply.status_code != 200:
                raise HoneError(f"the model server refused labels: {reply.text[:300]}")

    def version(self) -> int:
        return int(self.client.get("/v1/models/digits").json()["version"])

    def stop(self) -> None:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # answers what is queued, writes the records
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def live_loop(ws: Workspace, raw: Any, seed: int, workers: int) -> LiveLoop:
    from hone.loop import run_loop
    from hone.predictions import prediction_stats
    from hone.store.database import database_for

    x_seen = np.concatenate([raw.to_numpy("train")[0], raw.to_numpy("validation")[0]])
    y_seen = np.concatenate([raw.to_numpy("train")[1], raw.to_numpy("validation")[1]])
    x_new, y_new = raw.to_numpy("test")
    order = np.random.default_rng(seed).permutation(len(x_seen))
    wave1, truth1 = shift(x_seen[order], seed), y_seen[order]
    wave2, truth2 = shift(x_new, seed + 1), np.asarray(y_new)
    console.print(
        "\n[bold]serve[/]     hone serve digits@champion on loopback; production has drifted: "
        f"inverted contrast + noise (sigma {NOISE})"
    )
    server = _Server(ws)
    try:
        first = server.version()
        with console.status(f"sending {len(wave1):,} shifted digits …"):
            ids, answered, _ = server.send(wave1)
        labeled = int(len(ids) * LABELED_SHARE)
        with console.status(f"sending labels for {labeled:,} of them …"):
            server.label(ids[:labeled], truth1[:labeled])
        before = float(np.mean(np.asarray(answered[:labeled]) == truth1[:labeled]))
        console.print(
            f"  {len(ids):,} predictions by digits@{first}, recorded; {labeled:,} labeled "
            f"back: live accuracy [bold red]{before:.1%}[/] (the drift hurts)"
        )
        console.print(
            "[bold]loop[/]      harvest the labeled predictions → train a challenger → promote "
            "if it beats the champion on the freshest labeled rows"
        )
        with console.status("running the loop …") as status:
            result = run_loop(
                "digits",
                min_new_labels=100,
                nproc=workers,
                workspace=ws,
                say=lambda text: status.update(f"loop: {text}"),
            )
        if result.harvest is not None:
            h = result.harvest
            console.print(
                f"  harvested {h['rows']:,} labeled predictions into {h['version']} "
                f"({h['splits']['train']:,} train, {h['splits']['fresh']:,} held out as "
                f"fresh); preprocessing {h['why']}",
                markup=False,
            )
        console.print(f"  {result.outcome}: {result.message}", markup=False)
        deadline = time.monotonic() + 30
        while server.version() != result.champion_after and time.monotonic() < deadline:
            time.sleep(0.1)
        with console.status(f"sending {len(wave2):,} new shifted digits …"):
            ids2, answered2, versions2 = server.send(wave2)
            server.label(ids2, truth2)
        after = float(np.mean(np.asarray(answered2) == truth2))
        console.print(
            f"  new traffic answered by digits@{versions2[-1]} (switched without a restart): "
            f"live accuracy [bold green]{after:.1%}[/] (was {before:.1%})"
        )
    finally:
        server.stop()
    stats = prediction_stats(database_for(ws.store_uri), "digits", by=None)
    for row in stats["versions"]:
        accuracy = row["live_accuracy"]
        shown = "-" if accuracy is None else f"{accuracy:.1%}"
        console.print(
            f"  digits@{row['version']}: {row['predictions']:,} predictions, "
            f"{row['labeled']:,} labeled, live accuracy {shown}, "
            f"p50 {row['latency_ms']['p50']:.2f} ms (hone predictions stats digits)"
        )
    return LiveLoop(
        before=before,
        after=after,
        version_before=first,
        version_after=versions2[-1],
        requests=math.ceil(len(ids) / PER_REQUEST) + math.ceil(len(ids2) / PER_REQUEST),
        predictions=len(ids) + len(ids2),
        labeled=labeled + len(ids2),
        loop=result.to_dict(),
    )
