"""The benchmark scripts run (at smoke sizes), report real figures, and can fail.

MLflow is not installed here (it lives in .venv-mlflow, made by ``make bench``): these
tests drive hone's side and the orchestration, whose method is the same for both sides.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCH))

import provenance  # noqa: E402
import steady  # noqa: E402
import trials  # noqa: E402
from report_data import data_rows  # noqa: E402
from suite import summarize  # noqa: E402
from workloads import Sizes, expected_search_hits  # noqa: E402

QUICK = Sizes.quick()


def bench_results(script: str, workdir: Path, *args: str) -> dict[str, dict[str, object]]:
    """A script's RESULT lines at smoke size (tests/data/test_bench_data.py uses it too)."""
    return quick_results(script, workdir, *args)


def quick_results(script: str, workdir: Path, *args: str) -> dict[str, dict[str, Any]]:
    done = run_script(script, workdir, "--quick", *args)
    assert done.returncode == 0, done.stderr
    return parse_results(done.stdout)


def run_script(script: str, workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BENCH / script), str(workdir), *args],
        capture_output=True,
        text=True,
        cwd=BENCH,
        timeout=300,
        check=False,
    )


def parse_results(stdout: str) -> dict[str, dict[str, Any]]:
    found = {}
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT ") :])
            found[str(result.pop("bench"))] = result
    return found


# hone's trials ------------------------------------------------------------------------


@pytest.mark.slow
def test_throughput_trial_stores_every_point(tmp_path: Path) -> None:
    found = quick_results("bench_hone.py", tmp_path, "--only=metric_throughput")
    result = found["metric_throughput"]
    assert result["points"] == QUICK.metric_points
    # Taking the calls is faster than taking them into the store, which includes it.
    assert result["accepted_per_s"] >= result["points_per_s"] > 0


@pytest.mark.slow
def test_search_trials_find_the_runs_the_filter_selects(tmp_path: Path) -> None:
    built = quick_results("bench_hone.py", tmp_path, "--only=search_store")["search_store"]
    assert built["runs"] == QUICK.search_runs and built["build_s"] > 0
    found = quick_results("bench_hone.py", tmp_path, "--only=search")["search"]
    assert found["results"] == expected_search_hits(QUICK.search_runs) > 0
    assert found["first_ms"] > 0 and found["warm_ms"] > 0


@pytest.mark.slow
def test_memory_trial_measures_growth_over_its_baseline(tmp_path: Path) -> None:
    found = quick_results("bench_hone.py", tmp_path, "--only=memory", "--points=30000")
    result = found["memory"]
    assert result["points"] == 30_000
    assert result["baseline_rss_mib"] > 10  # an interpreter with hone imported
    assert result["peak_rss_mib"] >= result["baseline_rss_mib"] - 1
    assert result["rss_growth_mib"] == pytest.approx(
        result["peak_rss_mib"] - result["baseline_rss_mib"]
    )
    assert result["points_per_s"] > 0


@pytest.mark.slow
def test_training_overhead_trial_reports_every_variant(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    result = quick_results("bench_hone.py", tmp_path, "--only=training_overhead")
    overhead = result["training_overhead"]
    assert set(overhead["variants"]) == {"control", "log_metrics", "log_metric"}
    assert overhead["baseline_ms_per_step"] > 0
    for figures in overhead["variants"].values():
        assert figures["overhead_pct_min"] <= figures["overhead_pct"] <= figures["overhead_pct_max"]


def test_unknown_benchmark_names_are_refused(tmp_path: Path) -> None:
    done = run_script("bench_hone.py", tmp_path, "--only=nope")
    assert done.returncode != 0 and "no such benchmark" in done.stderr


# kill -9 ------------------------------------------------------------------------------


@pytest.mark.slow
def test_kill9_store_holds_every_acknowledged_point(tmp_path: Path) -> None:
    found = quick_results("bench_kill9.py", tmp_path)["kill9"]
    assert found["failed"] == 0 and found["passed"] == QUICK.kill_trials
    moments = [t["kill_at_fraction"] for t in found["trials"]]
    assert len(set(moments)) == len(moments)  # killed at different moments
    for trial in found["trials"]:
        # The parent kills only once the child has acknowledged its share of the steps.
        assert trial["acknowledged"] >= (trial["kill_at_fraction"] - 0.001) * QUICK.kill_points
        assert trial["ok"] and trial["stored"] >= trial["acknowledged"]
        assert trial["run_status"] == "killed"


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["drop-tail", "drop-journal"])
def test_kill9_fails_when_acknowledged_points_are_lost(tmp_path: Path, fault: str) -> None:
    done = run_script("bench_kill9.py", tmp_path, "--quick", f"--fault={fault}")
    assert done.returncode != 0
    assert "kill -9 check FAILED" in done.stderr
    found = parse_results(done.stdout)["kill9"]
    assert found["failed"] == QUICK.kill_trials
    assert all(t["stored"] < t["acknowledged"] for t in found["trials"])


# The method ---------------------------------------------------------------------------


SPAWN_TWO = """
import json, sys
import trials
report = "print('RESULT', '{\\"bench\\": \\"x\\"}')"
hungry = "b = bytearray(300 << 20)\\nb[::4096] = bytes(len(b[::4096]))\\n" + report
big = trials.spawn([sys.executable, "-c", hungry], "a", ".")
small = trials.spawn([sys.executable, "-c", report], "a", ".")
print(json.dumps([big.own_peak_rss_mib, small.own_peak_rss_mib, big.results]))
"""


def test_trial_peak_rss_comes_from_the_child() -> None:
    """From a small parent (as run_all.py is), the child's own peak; from a parent whose
    peak is above the child's (this test process), unknown rather than the parent's."""
    done = subprocess.run(
        [sys.executable, "-c", SPAWN_TWO], capture_output=True, text=True, cwd=BENCH, check=True
    )
    big, small, results = json.loads(done.stdout)
    assert 300 <= big < 400 and results == {"x": {}}
    assert small is None or small < 50
    inherited = trials.spawn([sys.executable, "-c", "pass"], "a", BENCH)
    assert inherited.own_peak_rss_mib is None  # below this process's peak: not knowable
    # What Linux reports for it instead: about this process's own peak.
    assert inherited.peak_rss_mib == pytest.approx(inherited.parent_peak_mib, abs=8)


def test_a_failing_trial_raises_with_its_output(tmp_path: Path) -> None:
    with pytest.raises(trials.TrialFailed, match="boom"):
        trials.spawn([sys.executable, "-c", "raise SystemExit('boom')"], "a", tmp_path)


def fake_trial(side: str, value: float) -> trials.Trial:
    return trials.Trial(side, {"b": {"rate": value, "mode": "wal"}}, wall_s=1.0, peak_rss_mib=50)


def test_sides_alternate_which_goes_first() -> None:
    calls: list[str] = []

    def side(name: str) -> Any:
        def run(r: int) -> trials.Trial:
            calls.append(name)
            return fake_trial(name, 1.0)

        return run

    trials.interleaved({"hone": side("hone"), "mlflow": side("mlflow")}, 3, "t")
    assert calls == ["hone", "mlflow", "mlflow", "hone", "hone", "mlflow"]


def test_ratios_are_taken_per_round_then_summarized() -> None:
    rounds = [
        {"a": fake_trial("a", a), "b": fake_trial("b", b)}
        for a, b in [(100.0, 10.0), (300.0, 10.0), (90.0, 30.0)]
    ]

    def ratio(row: dict[str, trials.Trial]) -> float:
        return float(row["a"].results["b"]["rate"]) / float(row["b"].results["b"]["rate"])

    summary = summarize(rounds, "b", {"a_over_b": ratio})
    assert summary["ratios"]["a_over_b"] == {
        "median": 10.0,
        "min": 3.0,
        "max": 30.0,
        "values": [10.0, 30.0, 3.0],
    }
    assert summary["sides"]["a"]["rate"]["median"] == 100.0
    assert summary["sides"]["a"]["mode"] == ["wal"]
    assert summary["sides"]["b"]["trial_peak_rss_mib"]["median"] == 50


class FakeClock:
    """Time that advances only when the fake training loop says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeClock]:
    fake = FakeClock()
    monkeypatch.setattr(steady, "time", fake)
    yield fake


def test_steady_overhead_counts_work_left_to_the_background(clock: FakeClock) -> None:
    """A variant that costs 1 ms a step in the call and leaves 1 ms a step to a background
    thread (paid during the next block, or by the drain) costs 2 ms a step in all: 100% of a
    2 ms step. Timing the logging block alone would show 50%."""
    backlog = 0.0

    def run_block(steps: int, log: steady.LogFn | None) -> None:
        nonlocal backlog
        clock.now += steps * 0.002 + backlog  # the loop, plus background work catching up
        backlog = 0.0
        if log is not None:
            log({}, 0)
            clock.now += steps * 0.001
            backlog = steps * 0.001

    def drain() -> None:
        nonlocal backlog
        clock.now += backlog
        backlog = 0.0

    def logging(values: dict[str, float], step: int) -> None:
        """Its cost is charged by ``run_block``, as a real call's would be."""

    result = steady.steady_overheads(run_block, {"logging": logging}, drain, 10, 3)
    assert result["variants"]["logging"]["overhead_pct"] == pytest.approx(100.0)
    assert result["variants"]["logging"]["extra_us_per_step"] == pytest.approx(2000.0)
    assert result["baseline_ms_per_step"] == pytest.approx(2.0)


def test_data_rows_survive_a_change_of_shape() -> None:
    """bench_data.py is another script that grows: a result with unexpected fields is shown
    raw, and one of the known shapes gets its verdicts from its own figures."""
    ratio = {"median": 0.9, "min": 0.85, "max": 0.95, "values": [0.9, 0.85, 0.95]}
    big = {
        "rows": 1_000_000,
        "columns": 65,
        "source_bytes": 668_000_000,
        "hone": {"rows_per_s": ratio, "peak_rss_mib": ratio},
        "pandas": {"rows_per_s": ratio, "peak_rss_mib": ratio},
        "speed_ratio": ratio,
        "rss_ratio": ratio,
    }
    rows = data_rows({"data_import_1m": big, "data_append": {"unexpected": 1}})
    assert rows[0][0].startswith("7 import 1,000,000 x 65 from CSV (668 MB)")
    assert rows[0][5] == "PASS" and rows[1][5] == "MISS"  # 0.9x speed; 0.9x memory > 0.5x
    assert rows[2][0] == "data_append (raw)" and "unexpected" in rows[2][1]


def test_results_file_is_traceable() -> None:
    root = BENCH.parent
    info = provenance.provenance(root, None)
    assert len(info["commit"]) == 40 and isinstance(info["dirty"], bool)
    assert info["date"].count("-") == 2
    assert info["machine"]["cores"] >= 1 and info["machine"]["ram_gib"] > 0
    versions = info["versions"]
    assert versions["python"] and versions["sqlite"] and versions["hone"] and versions["pyarrow"]
    assert {"torch", "pandas"} <= set(versions)
    path = provenance.results_path(root, info, quick=False)
    assert path.parent == root / "benchmarks" / "results"
    assert path.name.startswith(f"{info['date']}-{info['commit'][:12]}")
    assert path.name.endswith("-dirty.json") == info["dirty"]


@pytest.mark.slow
def test_run_all_writes_a_results_file(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    done = subprocess.run(
        [
            sys.executable,
            str(BENCH / "run_all.py"),
            "--quick",
            "--skip-mlflow",
            "--only=create_runs,search",
            f"--out={out}",
        ],
        capture_output=True,
        text=True,
        cwd=BENCH,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    record = json.loads(out.read_text())
    assert record["provenance"]["commit"] and record["quick"] is True
    b = record["benchmarks"]
    assert set(b) == {"create_runs", "search"}
    hone_search = b["search"]["sides"]["hone"]
    assert hone_search["results"]["median"] == expected_search_hits(QUICK.search_runs)
    assert b["search"]["sides"]["hone_fresh"]["trial_wall_s"]["median"] > 0
    created = b["create_runs"]["sides"]["hone"]
    assert created["runs_per_s"]["median"] > 0 and created["journal_mode"] == ["wal"]
    assert 20 < created["trial_peak_rss_mib"]["median"] < 4096
    assert "3 create" in done.stdout
    rendered = subprocess.run(
        [sys.executable, str(BENCH / "render.py"), str(out), "--markdown"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert record["provenance"]["commit"][:12] in rendered.splitlines()[0]
    assert "| 3 search_runs over" in rendered and "| 3 create" in rendered


@pytest.mark.slow
def test_the_split_cache_benchmark_measures_what_it_says(tmp_path: Path) -> None:
    """Two ranks at once: with the cache off both decode, cold exactly one does, warm
    none; its rows render."""
    trial = trials.spawn(
        [sys.executable, str(BENCH / "bench_split_cache.py"), str(tmp_path), "--quick"],
        "hone",
        BENCH,
    )
    result = trial.results["split_cache"]
    sides = ("off", "cold", "warm")
    decoders = {side: result[side]["decoders_per_trial"]["median"] for side in sides}
    assert decoders == {"off": 2, "cold": 1, "warm": 0}
    rows = data_rows({"split_cache": result})
    assert rows[0][0].startswith("5 split cache, 2 ranks load 18,000 x 64")
    assert rows[3][1] == "1" and rows[3][2] == "2 (off)"


# The web UI (bench_ui.py) ---------------------------------------------------------------


@pytest.mark.slow
def test_the_ui_benchmark_times_the_runs_pages_it_checked(tmp_path: Path) -> None:
    """hone's side at smoke size (MLflow's needs .venv-mlflow): every page holds the runs
    the workload says, newest first, and the table reads the figures."""
    from report_ui import ui_rows

    found = quick_results("bench_ui.py", tmp_path, "--only=ui_runs")["ui_runs"]
    assert found["runs"] == QUICK.search_runs and found["page"] == 100
    assert found["matches"] == expected_search_hits(QUICK.search_runs) > 0
    assert set(found["sides"]) == {"hone"} and found["rounds"] == QUICK.cheap_pairs
    hone = found["sides"]["hone"]
    kinds = ("first", "filtered", "first_count", "filtered_count", "first_total", "page50")
    for kind in kinds:
        figure = hone[f"{kind}_ms"]
        assert 0 < figure["min"] <= figure["median"] <= figure["max"], kind
    assert hone["cold_first_ms"]["median"] > 0 and hone["peak_rss_mib"]["median"] > 20
    assert hone["first_bytes"]["median"] > hone["page50_bytes"]["median"] > 0
    rows = ui_rows({"ui_runs": found})
    assert rows[0][0].startswith(f"14 runs page over {QUICK.search_runs:,} runs")
    assert not any("(raw)" in row[0] for row in rows)
    assert rows[0][5] == ""  # no MLflow side, no verdict


def test_the_ui_benchmark_knows_which_runs_each_page_must_show() -> None:
    import bench_ui

    pages = bench_ui.expected_pages(QUICK.search_runs, 100)
    assert pages["first"] == [str(i) for i in range(QUICK.search_runs - 1, -1, -1)]
    assert pages["hits"] == [str(expected_search_hits(QUICK.search_runs))]
    assert pages["filtered"] == sorted(pages["filtered"], key=int, reverse=True)
    body = json.dumps({"total": QUICK.search_runs, "runs": [{"params": {"p0": "0"}}]})
    with pytest.raises(SystemExit, match="other runs than expected"):
        bench_ui._check("hone", "first", body.encode(), pages)  # oldest first: refused
    mlflow = {"runs": [{"data": {"params": [{"key": "p0", "value": p}]}} for p in pages["first"]]}
    bench_ui._check("mlflow", "first", json.dumps(mlflow).encode(), pages)


@pytest.mark.slow
def test_the_ui_benchmark_draws_the_chart_in_chromium(tmp_path: Path) -> None:
    import ui_chart

    missing = ui_chart.browser_missing()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the UI benchmark's browser must run in CI: {missing}")
        pytest.skip(missing)
    from report_ui import ui_rows

    found = quick_results("bench_ui.py", tmp_path, "--only=ui_chart")["ui_chart"]
    loads = [load for these in found["loads"] for load in these]
    assert len(loads) == QUICK.cheap_pairs * found["loads_per_round"]
    for load in loads:
        metric = load["metric"]
        # Navigation, then the metric's answer, then the first draw, then its frame.
        assert 0 < metric["start"] <= metric["end"] <= load["drawn"] <= load["frame"]
        assert load["draws"] >= 1 and metric["bytes"] > 0
    assert found["metric_bytes"] > 0 and found["metric_server_ms"]["median"] > 0
    rows = ui_rows({"ui_chart": found})
    assert rows[0][0].startswith(f"14 run page with a {found['points']:,}-point chart")
    assert rows[0][5] in {"PASS", "MISS"} and not any("(raw)" in row[0] for row in rows)
