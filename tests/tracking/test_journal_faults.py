"""Journals under hostile conditions (issue 6, faults 8, 9, 12 and 16): replayers racing
run creation, frames of any size, damage in the middle, a full disk, odd files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

import hone
from hone.cli.main import main
from hone.config import Workspace
from hone.tracking.journal import DAMAGED_DIR, JournalWriter, abandoned_segments
from hone.tracking.records import HEADER, encode_event, encode_metric
from hone.tracking.scan import READ_WINDOW, FrameScanner
from tests.tracking.helpers import crash, spawn

SHORT_RUNS = """
import sys, hone
ids = []
for i in range(int(sys.argv[1])):
    with hone.start_run("race") as run:
        for step in range(10):
            run.log_metric("x", float(step), step=step)
    ids.append(run.id)
print("\\n".join(ids))
"""
SYNC_LOOP = """
import sys, hone, time
deadline = time.monotonic() + 120
while time.monotonic() < deadline:
    hone.sync()
"""


@pytest.mark.slow
def test_replayers_looping_beside_run_creation_lose_no_run(
    workspace: Workspace, tmp_path: Path
) -> None:
    env = {**os.environ, "HONE_HOME": str(workspace.home), "HONE_STORE_URI": workspace.store_uri}
    logs = [tmp_path / f"sync{i}.log" for i in range(2)]
    syncers = []
    for log in logs:
        with log.open("w") as err:
            syncers.append(
                subprocess.Popen(
                    [sys.executable, "-c", SYNC_LOOP],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                )
            )
    try:
        maker = subprocess.run(
            [sys.executable, "-c", SHORT_RUNS, "200"],
            env=env,
            text=True,
            capture_output=True,
            timeout=300,
            check=False,
        )
        assert maker.returncode == 0, maker.stderr
    finally:
        for proc in syncers:
            proc.send_signal(signal.SIGTERM)
            proc.wait()
    for log in logs:
        assert "Traceback" not in log.read_text()
    ids = maker.stdout.split()
    assert len(ids) == 200
    hone.sync(workspace=workspace)
    for run_id in ids:
        got = hone.get_run(run_id, workspace=workspace)
        assert got.status is hone.RunStatus.FINISHED, run_id
        assert len(hone.get_metric_history(run_id, "x", workspace=workspace)) == 10


CLAIM_LOOP = """
import sys
from pathlib import Path
from hone.tracking.journal import abandoned_segments, remove_segment
while True:
    for segment in abandoned_segments(Path(sys.argv[1])):
        if segment.run_id is None:
            remove_segment(segment.path)
"""


@pytest.mark.slow
def test_segments_created_beside_looping_replayers_stay_linked(tmp_path: Path) -> None:
    """Before creation was atomic, ~0.4% of new segments were claimed and unlinked by a
    replayer between their creation and their lock (21 of 5,000 here)."""
    journals = tmp_path / "journals"
    journals.mkdir()
    logs = [tmp_path / f"claim{i}.log" for i in range(2)]
    claimers = []
    for log in logs:
        with log.open("w") as err:
            claimers.append(
                subprocess.Popen(
                    [sys.executable, "-c", CLAIM_LOOP, str(journals)],
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                )
            )
    unlinked = 0
    try:
        for _ in range(4000):
            writer = JournalWriter(journals)
            unlinked += os.fstat(writer.fd).st_nlink == 0
            writer.close(trim=False)
            writer.path.unlink(missing_ok=True)
    finally:
        for proc in claimers:
            proc.kill()
            proc.wait()
    assert unlinked == 0
    for log in logs:
        assert "Traceback" not in log.read_text()


def test_a_new_segment_is_locked_before_any_replayer_can_see_it(tmp_path: Path) -> None:
    writer = JournalWriter(tmp_path)
    assert writer.path.suffix == ".jnl" and writer.path.exists()
    assert not list(tmp_path.glob("*.new"))  # created under a temporary name, then renamed
    assert list(abandoned_segments(tmp_path)) == []  # locked from the start
    writer.close()


def test_a_frame_larger_than_the_read_window_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "big.jnl"
    big = {"values": {f"k{i}": "v" * 8000 for i in range((READ_WINDOW // 8000) + 50)}}
    payload = b"J" + b'{"kind":"params","time":1.0,' + _json(big)[1:]
    frame = HEADER.pack(len(payload), zlib.crc32(payload)) + payload
    path.write_bytes(
        encode_event("start", {"run_id": "a" * 32, "time": 0.0})
        + frame
        + encode_metric(b"x", 1.0, 0, 2.0)
    )
    with path.open("rb") as fh:
        scanner = FrameScanner(fh.fileno(), 0, path.stat().st_size)
        kinds = [getattr(r, "kind", "metric") for _, r in scanner.frames()]
    assert len(frame) > READ_WINDOW
    assert kinds == ["start", "params", "metric"] and not scanner.torn_bytes


@pytest.mark.slow
def test_huge_params_survive_kill_9(sqlite_workspace: Workspace) -> None:
    code = """
import hone
run = hone.start_run("big")
print(run.id, flush=True)
run.log_params({f"p{i}": "v" * 8000 for i in range(9000)})  # ~72 MB of values
run.log_metric("after", 1.0)
print("logged", flush=True)
import time; time.sleep(60)
"""
    proc = spawn(code, sqlite_workspace.home)
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    assert proc.stdout.readline().strip() == "logged", proc.stderr.read() if proc.stderr else ""
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    report = hone.sync(workspace=sqlite_workspace)
    assert report.killed_runs == [run_id] and report.quarantined_count == 0
    got = hone.get_run(run_id, workspace=sqlite_workspace)
    assert len(got.params) == 9000 and got.params["p8999"] == "v" * 8000
    assert got.metrics["after"].value == 1.0


def test_damage_in_the_middle_is_stepped_over_and_reported(workspace: Workspace) -> None:
    run = hone.start_run("damaged", workspace=workspace)
    for step in range(300):
        run.log_metric("x", float(step), step=step)
    segment = crash(run)
    data = bytearray(segment.read_bytes())
    frame = len(encode_metric(b"x", 0.0, 0, 0.0))
    at = len(data) - 150 * frame - 5  # inside the 150th frame from the end
    data[at : at + 10] = b"\xff" * 10
    segment.write_bytes(bytes(data))
    report = hone.sync(workspace=workspace)
    assert report.skipped_bytes > 0 and report.killed_runs == [run.id]
    steps = [p.step for p in hone.get_metric_history(run.id, "x", workspace=workspace)]
    assert len(steps) in (298, 299) and steps[-1] == 299  # one or two frames lost, no more


def test_a_segment_whose_first_record_is_unreadable_is_kept_aside(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    run = hone.start_run("headless", workspace=workspace)
    run.log_metric("x", 1.0)
    segment = crash(run)
    data = bytearray(segment.read_bytes())
    data[10] ^= 0xFF  # inside the start record
    segment.write_bytes(bytes(data))
    assert main(["--workspace", str(workspace.home), "sync"]) == 0
    assert "aside" in capsys.readouterr().out
    kept = workspace.journal_dir / DAMAGED_DIR / segment.name
    assert kept.read_bytes() == bytes(data) and not segment.exists()


def test_odd_things_in_the_journal_folder_block_nothing(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    journals = workspace.journal_dir
    journals.mkdir(parents=True, exist_ok=True)
    (journals / "x.jnl").mkdir()
    (journals / "link.jnl").symlink_to("/etc/passwd")
    (journals / "empty.jnl").write_bytes(b"")
    (journals / "zeros.jnl").write_bytes(b"\0" * 4096)
    (journals / "junk.jnl").write_bytes(os.urandom(3000))
    os.mkfifo(journals / "fifo.jnl")  # opening it for reading would wait for a writer
    for argv in (["sync"], ["runs", "list"], ["sync", "--json"]):
        assert main(["--workspace", str(workspace.home), *argv]) == 0, argv
    assert (journals / "x.jnl").is_dir() and (journals / "link.jnl").is_symlink()
    assert (journals / "fifo.jnl").exists()
    assert not (journals / "empty.jnl").exists() and not (journals / "zeros.jnl").exists()
    assert (journals / DAMAGED_DIR / "junk.jnl").exists()


FILL_DISK = """
import sys, hone
from hone.errors import DiskFullError
run = hone.start_run("full")
print(run.id, flush=True)
logged = 0
try:
    for step in range(50_000_000):
        run.log_metric("loss", 1.0 / (step + 1), step=step)
        logged += 1
except DiskFullError as exc:
    print("full", logged, flush=True)
    print(exc, file=sys.stderr)
run.end()
print("ended", flush=True)
"""


@pytest.mark.slow
@pytest.mark.parametrize("store", ["elsewhere", "on the full disk"])
def test_a_full_disk_is_a_clean_error_not_a_crash(tmp_path: Path, store: str) -> None:
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=5m", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"cannot mount a tmpfs in CI: {done.stderr.decode()}")
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        elsewhere = f"sqlite:///{tmp_path / 'store.db'}"  # a roomy disk
        ws = hone.init(mount / "ws", store_uri=elsewhere if store == "elsewhere" else None)
        proc = subprocess.run(
            [sys.executable, "-c", FILL_DISK],
            env={**os.environ, "HONE_HOME": str(ws.home)},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr  # no SIGBUS (-7)
        lines = proc.stdout.split()
        run_id, logged = lines[0], int(lines[2])
        assert lines[1] == "full" and lines[-1] == "ended" and logged > 10_000
        assert "disk holding the run journals" in proc.stderr and "is full" in proc.stderr
        # Space comes back: what the run logged, and that it ended, reach the store.
        subprocess.run(["mount", "-o", "remount,size=64m", str(mount)], check=True)
        hone.sync(workspace=ws)
        history = hone.get_metric_history(run_id, "loss", workspace=ws)
        assert [p.step for p in history] == list(range(logged))
        assert hone.get_run(run_id, workspace=ws).status is hone.RunStatus.FINISHED
    finally:
        from hone.tracking.tracker import close_trackers

        close_trackers()
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _json(value: object) -> bytes:
    import json

    return json.dumps(value, separators=(",", ":")).encode()


@pytest.mark.parametrize("tail", [b"J", b'J{"kind":'], ids=["bare", "event-like"])
def test_crafted_damage_costs_reading_time_linear_in_its_size(tmp_path: Path, tail: bytes) -> None:
    """Each unit claims a frame reaching the end of the file, with a bad CRC: read whole
    for every candidate, that took time quadratic in the damage (1 MiB: 22 s)."""
    path = tmp_path / "crafted.jnl"
    start = encode_event("start", {"run_id": "a" * 32, "time": 0.0})
    unit = 8 + len(tail)
    units = 2_000_000 // unit
    size = len(start) + unit * units
    body = bytearray()
    for i in range(units):
        body += HEADER.pack(size - (len(start) + unit * i) - 8, 0) + tail
    path.write_bytes(start + bytes(body))
    read = 0
    with path.open("rb") as fh:
        scanner = FrameScanner(fh.fileno(), 0, size)
        real_read = scanner._read

        def counting(offset: int, length: int) -> bytes:
            nonlocal read
            data = real_read(offset, length)
            read += len(data)
            return data

        scanner._read = counting  # type: ignore[method-assign,assignment]
        kinds = [getattr(r, "kind", "metric") for _, r in scanner.frames()]
    assert kinds == ["start"]
    assert read <= 20 * size + (80 << 20)  # bounded by the segment's size, not its square
