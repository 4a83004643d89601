"""Two machines, for real, on this one: two network namespaces joined by a veth pair, one
``hone train --nnodes 2`` in each. The pair's addresses (192.0.2.0/24, the documentation
range) exist only inside those namespaces, so no traffic leaves them. Needs root and
``ip``; skipped without them locally, and a failure in CI (CI=true)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from hone.config import Workspace
from hone.store.database import database_for
from hone.tracking.entities import RunStatus
from hone.tracking.queries import get_run, metric_history, search_runs
from tests.train.helpers import digits

pytestmark = pytest.mark.slow

HOST_A, HOST_B = "192.0.2.1", "192.0.2.2"
PORT = 29400


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    veth_a: str
    veth_b: str


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "no `ip` command (iproute2)"
    return None


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@pytest.fixture
def namespaces() -> Iterator[Pair]:
    why = _missing()
    if why is not None:
        if os.environ.get("CI"):
            pytest.fail(f"the two-namespace test must run in CI: {why}")
        pytest.skip(why)
    tag = uuid.uuid4().hex[:6]
    pair = Pair(f"hone-a-{tag}", f"hone-b-{tag}", f"hva{tag}", f"hvb{tag}")
    try:
        _ip("netns", "add", pair.a)
        _ip("netns", "add", pair.b)
        _ip("link", "add", pair.veth_a, "type", "veth", "peer", "name", pair.veth_b)
        _ip("link", "set", pair.veth_a, "netns", pair.a)
        _ip("link", "set", pair.veth_b, "netns", pair.b)
        for ns, veth, address in ((pair.a, pair.veth_a, HOST_A), (pair.b, pair.veth_b, HOST_B)):
            _ip("-n", ns, "addr", "add", f"{address}/24", "dev", veth)
            _ip("-n", ns, "link", "set", veth, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        yield pair
    finally:
        # Whatever still runs in them goes first, then the namespaces (and the veth pair).
        for ns in (pair.a, pair.b):
            pids = subprocess.run(
                ["ip", "netns", "pids", ns], capture_output=True, text=True, check=False
            ).stdout.split()
            for pid in pids:
                subprocess.run(["kill", "-9", pid], check=False, capture_output=True)
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)


def _node(pair: Pair, ws: Workspace, ref: str, rank: int, *extra: str) -> subprocess.Popen[str]:
    ns, veth, address = (
        (pair.a, pair.veth_a, HOST_A) if rank == 0 else (pair.b, pair.veth_b, HOST_B)
    )
    command = ["ip", "netns", "exec", ns, "env", f"GLOO_SOCKET_IFNAME={veth}"]
    command += [sys.executable, "-m", "hone.cli.main", "-w", str(ws.home), "train"]
    command += ["builtin:mlp", "--data", ref, "--nnodes", "2", "--node-rank", str(rank)]
    command += ["--rdzv-endpoint", f"{HOST_A}:{PORT}", "--local-addr", address, "--json"]
    return subprocess.Popen(
        [*command, *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _finish(process: subprocess.Popen[str], timeout: float) -> tuple[int, str, str]:
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        pytest.fail(f"a node did not finish in {timeout} s: {err[-2000:]}")
    return process.returncode, out, err


def test_two_nodes_train_in_lockstep_as_one_run(
    namespaces: Pair, sqlite_workspace: Workspace
) -> None:
    ws = sqlite_workspace
    ref = digits(ws)
    first = _node(namespaces, ws, ref, 0, "-p", "epochs=2")
    second = _node(namespaces, ws, ref, 1, "-p", "epochs=2")
    code_a, out_a, err_a = _finish(first, 240)
    code_b, _, err_b = _finish(second, 60)
    assert code_a == 0, err_a[-3000:]
    assert code_b == 0, err_b[-3000:]
    result = json.loads(out_a)
    assert result["status"] == "finished"
    db = database_for(ws.store_uri)
    assert len(search_runs(db, max_results=10)) == 1  # one job, one run
    run = get_run(db, result["run_id"])
    assert run.status is RunStatus.FINISHED
    assert run.params["world_size"] == "2" and run.params["nodes"] == "2"
    hosts = json.loads(run.tags["hone.hosts"])
    assert sorted(h.rsplit(" ", 2)[-1] for h in hosts) == ["0)", "1)"]  # one rank per node
    steps = json.loads(run.tags["hone.rank_steps"])
    weights = json.loads(run.tags["hone.rank_weights"])
    assert steps[0] == steps[1] == int(run.params["total_steps"])
    assert weights[0] == weights[1]  # identical final weights on both nodes
    history = metric_history(db, run.id, "train/loss")
    assert [m.step for m in history] == list(range(1, steps[0] + 1))


def test_a_node_that_never_joins_times_out_naming_the_endpoint(
    namespaces: Pair, sqlite_workspace: Workspace
) -> None:
    ws = sqlite_workspace
    ref = digits(ws)
    alone = _node(namespaces, ws, ref, 0, "--join-timeout", "5")
    code, out, err = _finish(alone, 120)
    assert code == 1, err[-3000:]
    error = json.loads(out)["error"]
    assert f"rendezvous at {HOST_A}:{PORT}" in error and "within 5 s" in error
    (run,) = search_runs(database_for(ws.store_uri), max_results=10)
    assert run.status is RunStatus.FAILED
