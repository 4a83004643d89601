"""A growing corpus of bad input to the tracking API (issue 6, fault 16): each case is a
one-line HoneError naming the problem, never a traceback, and writes nothing."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import hone
from hone.cli.main import main
from hone.config import Workspace
from hone.errors import HoneError, NotFoundError, UserError, ValidationError


class BadStr:
    def __str__(self) -> str:
        raise RuntimeError("no text for you")


class FailingFloat:
    def __float__(self) -> float:
        raise RuntimeError("no number for you")


class FakeVersion:
    def __init__(self, version_id: Any, name: Any) -> None:
        self.id, self.name = version_id, name


# The run is Any: these calls break the API's types on purpose.
Call = Callable[[Any, Path], object]

# (case, call on a live run, error class, fragment of the message)
RUN_CASES: list[tuple[str, Call, type[HoneError], str]] = [
    ("string metric", lambda r, _: r.log_metric("x", "1.5"), ValidationError, "not a number"),
    ("bytes metric", lambda r, _: r.log_metric("x", b"1"), ValidationError, "not a number"),
    ("None metric", lambda r, _: r.log_metric("x", None), ValidationError, "not a number"),
    ("list metric", lambda r, _: r.log_metric("x", [1.0]), ValidationError, "not a number"),
    ("complex metric", lambda r, _: r.log_metric("x", 1j), ValidationError, "not a number"),
    ("huge metric", lambda r, _: r.log_metric("x", 10**400), ValidationError, "too large"),
    ("inf step", lambda r, _: r.log_metric("x", 1.0, step=math.inf), ValidationError, "integer"),
    ("nan step", lambda r, _: r.log_metric("x", 1.0, step=math.nan), ValidationError, "integer"),
    ("bool step", lambda r, _: r.log_metric("x", 1.0, step=True), ValidationError, "integer"),
    ("2**64 step", lambda r, _: r.log_metric("x", 1.0, step=2**64), ValidationError, "64 bits"),
    (
        "text timestamp",
        lambda r, _: r.log_metric("x", 1.0, timestamp="abc"),
        ValidationError,
        "seconds since the epoch",
    ),
    (
        "nan timestamp",
        lambda r, _: r.log_metric("x", 1.0, timestamp=math.nan),
        ValidationError,
        "not finite",
    ),
    ("int key", lambda r, _: r.log_metric(5, 1.0), ValidationError, "must be a string"),
    ("empty key", lambda r, _: r.log_metric("", 1.0), ValidationError, "empty"),
    ("metrics not a dict", lambda r, _: r.log_metrics(5), ValidationError, "mapping"),
    (
        "metrics with a text step",
        lambda r, _: r.log_metrics({"a": 1.0}, step="x"),
        ValidationError,
        "integer",
    ),
    ("params not a dict", lambda r, _: r.log_params([("a", 1)]), ValidationError, "mapping"),
    ("param unprintable", lambda r, _: r.log_param("p", BadStr()), ValidationError, "into text"),
    ("param NUL", lambda r, _: r.log_param("p", "a\x00"), ValidationError, "NUL"),
    ("tag too long", lambda r, _: r.set_tag("t", "v" * 8001), ValidationError, "8,000"),
    ("tag surrogate", lambda r, _: r.set_tag("t", "\udce9"), ValidationError, "surrogate"),
    ("tags not a dict", lambda r, _: r.set_tags("t=v"), ValidationError, "mapping"),
    ("artifact int", lambda r, _: r.log_artifact(5), ValidationError, "file or folder"),
    (
        "artifact missing",
        lambda r, p: r.log_artifact(p / "nope"),
        ValidationError,
        "no such file",
    ),
    (
        "artifact name escapes",
        lambda r, p: r.log_artifact(p / "f.txt", name="../x"),
        ValidationError,
        "relative",
    ),
    (
        "artifact name empty",
        lambda r, p: r.log_artifact(p / "f.txt", name=""),
        ValidationError,
        "non-empty",
    ),
    (
        "artifact name absolute",
        lambda r, p: r.log_artifact(p / "f.txt", name="/etc/x"),
        ValidationError,
        "relative",
    ),
    ("text not text", lambda r, _: r.log_text(5, "n"), ValidationError, "takes text"),
    ("input not a version", lambda r, _: r.log_input(5), ValidationError, "dataset version"),
    (
        "input id too long",
        lambda r, _: r.log_input(FakeVersion("x" * 100, "d")),
        ValidationError,
        "limit is 64",
    ),
    (
        "input split not text",
        lambda r, _: r.log_input(FakeVersion("a" * 64, "d"), split=3),
        ValidationError,
        "split",
    ),
    ("list key", lambda r, _: r.log_metric(["a"], 1.0), ValidationError, "must be a string"),
    ("list tag key", lambda r, _: r.set_tag(["a"], 1), ValidationError, "must be a string"),
    ("list param key", lambda r, _: r.log_param({"a"}, 1), ValidationError, "must be a string"),
    (
        "__float__ raises",
        lambda r, _: r.log_metric("x", FailingFloat()),
        ValidationError,
        "not a number",
    ),
    (
        "text with a lone surrogate",
        lambda r, _: r.log_text("\ud800", "x.txt"),
        ValidationError,
        "not valid Unicode",
    ),
    ("artifact FIFO", lambda r, p: r.log_artifact(p / "fifo"), ValidationError, "regular file"),
    (
        "artifact device",
        lambda r, _: r.log_artifact("/dev/zero"),
        ValidationError,
        "regular file",
    ),
    (
        "artifact name dot",
        lambda r, p: r.log_artifact(p / "f.txt", name="."),
        ValidationError,
        "named parts",
    ),
    (
        "artifact name with an empty part",
        lambda r, p: r.log_artifact(p / "f.txt", name="a//b"),
        ValidationError,
        "named parts",
    ),
    (
        "artifact path of too many bytes",
        lambda r, _: r.log_text("x", "\U0001f600" * 600),
        ValidationError,
        "bytes of UTF-8",
    ),
    ("end bogus", lambda r, _: r.end("bogus"), ValidationError, "ends as one of"),
    ("end running", lambda r, _: r.end("running"), ValidationError, "ends as one of"),
    ("end number", lambda r, _: r.end(5), ValidationError, "ends as one of"),
]


@pytest.mark.parametrize(
    ("case", "call", "error", "fragment"), RUN_CASES, ids=[c[0] for c in RUN_CASES]
)
def test_bad_input_to_a_live_run(
    workspace: Workspace,
    tmp_path: Path,
    case: str,
    call: Call,
    error: type[HoneError],
    fragment: str,
) -> None:
    (tmp_path / "f.txt").write_text("x")
    os.mkfifo(tmp_path / "fifo")
    with hone.start_run("bad", workspace=workspace) as run:
        before = run._writer.offset
        with pytest.raises(error, match=fragment):
            call(run, tmp_path)
        assert run._writer.offset == before, "the refused call journaled something"
        assert not run.ended
    got = hone.get_run(run.id, workspace=workspace)
    assert got.status is hone.RunStatus.FINISHED
    assert not got.metrics and not got.params and not got.tags and not got.inputs


StartCall = Callable[[Workspace], object]
start: Any = hone.start_run  # called with wrong types on purpose
START_CASES: list[tuple[str, StartCall, type[HoneError], str]] = [
    ("run_id int", lambda w: start(run_id=5, workspace=w), ValidationError, "run id"),
    ("run_id junk", lambda w: start(run_id="zz!", workspace=w), UserError, "run id"),
    (
        "run_id unknown",
        lambda w: start(run_id="0" * 32, workspace=w),
        NotFoundError,
        "no run",
    ),
    ("experiment int", lambda w: start(5, workspace=w), ValidationError, "name"),
    ("experiment blank", lambda w: start("  ", workspace=w), ValidationError, "name"),
    (
        "name unprintable",
        lambda w: start(name="a\nb", workspace=w),
        ValidationError,
        "printable",
    ),
    (
        "name too long",
        lambda w: start(name="n" * 300, workspace=w),
        ValidationError,
        "250",
    ),
    (
        "params not a dict",
        lambda w: start(params=5, workspace=w),
        ValidationError,
        "mapping",
    ),
    (
        "tags with NUL",
        lambda w: start(tags={"t": "\x00"}, workspace=w),
        ValidationError,
        "NUL",
    ),
    ("parent int", lambda w: start(parent=5, workspace=w), ValidationError, "parent"),
    ("parent junk", lambda w: start(parent="abc", workspace=w), ValidationError, "parent"),
    ("workspace int", lambda w: start(workspace=5), ValidationError, "workspace"),
]


@pytest.mark.parametrize(
    ("case", "call", "error", "fragment"), START_CASES, ids=[c[0] for c in START_CASES]
)
def test_bad_input_to_start_run_leaves_no_run(
    workspace: Workspace, case: str, call: StartCall, error: type[HoneError], fragment: str
) -> None:
    with pytest.raises(error, match=fragment):
        call(workspace)
    assert hone.active_run() is None
    assert hone.search_runs(workspace=workspace) == []


def test_module_functions_without_an_active_run_say_so(workspace: Workspace) -> None:
    calls: list[Callable[[], object]] = [
        lambda: hone.log_metric("x", 1.0),
        lambda: hone.log_params({"a": 1}),
        lambda: hone.set_tag("t", "v"),
        lambda: hone.end_run(),
    ]
    for call in calls:
        with pytest.raises(UserError, match="no active run"):
            call()


@pytest.mark.parametrize(
    "argv",
    [
        ["runs", "show", "caf\udce9"],
        ["runs", "metrics", "0" * 32, "k\udce9"],
        ["runs", "compare", "zz", "yy"],
    ],
)
def test_bad_input_on_the_command_line_is_one_line_and_exit_2_or_3(
    workspace: Workspace, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--workspace", str(workspace.home), *argv])
    err = capsys.readouterr().err
    assert code in (2, 3), err
    assert "Traceback" not in err and err.count("\n") == 1


def test_a_step_past_64_bits_writes_nothing_of_the_call(workspace: Workspace) -> None:
    with hone.start_run(workspace=workspace) as run:
        run.log_metric("big", 1.0, step=2**63 - 1)
        before = run._writer.offset
        with pytest.raises(ValidationError, match="64 bits"):
            run.log_metrics({"first": 1.0, "big": 3.0})
        with pytest.raises(ValidationError, match="64 bits"):
            run.log_metric("big", 2.0)
        assert run._writer.offset == before
    got = hone.get_run(run.id, workspace=workspace)
    assert set(got.metrics) == {"big"} and got.metrics["big"].value == 1.0


def test_logging_after_the_end_stores_no_blob(workspace: Workspace, tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("late")
    with hone.start_run(workspace=workspace) as run:
        pass
    blobs = Path(workspace.blob_uri.removeprefix("file://"))
    before = sorted(blobs.rglob("*")) if blobs.exists() else []
    for call in (lambda: run.log_artifact(tmp_path / "f.txt"), lambda: run.log_text("t", "t")):
        with pytest.raises(ValidationError, match="has ended"):
            call()
    assert (sorted(blobs.rglob("*")) if blobs.exists() else []) == before
    assert run.fetch().status is hone.RunStatus.FINISHED  # fetch after the end just reads
