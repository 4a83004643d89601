"""``/api`` for experiments and runs: the runs table, a run, its metric series, artifacts,
checkpoints, a comparison and a study's trials."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Query
from fastapi.responses import Response, StreamingResponse

from hone.errors import BlobError, FilterError, NotFoundError, UserError, ValidationError
from hone.models.workspace import Opened
from hone.server.responses import json_response
from hone.tracking import queries
from hone.tracking.checkpoints import list_checkpoints
from hone.tracking.entities import Run, json_number
from hone.tracking.filter import parse_filter, parse_order_by
from hone.tracking.quarantine import quarantined_records

__all__ = ["MAX_COMPARE", "MAX_PAGE", "ParameterError", "runs_router"]

#: Rows one page of the runs table may ask for.
MAX_PAGE = 1000
#: Runs one comparison may hold.
MAX_COMPARE = 20


class ParameterError(UserError):
    """A query parameter that does not parse, named, with where in it it went wrong."""

    def __init__(self, message: str, parameter: str, position: int | None) -> None:
        super().__init__(message)
        self.parameter = parameter
        self.position = position


@contextmanager
def _parameter(name: str) -> Iterator[None]:
    try:
        yield
    except FilterError as exc:
        raise ParameterError(str(exc), name, exc.position) from None


def table_row(run: Run) -> dict[str, Any]:
    """A run as the runs table shows it: no environment, inputs or artifacts."""
    return {
        "id": run.id,
        "name": run.name,
        "experiment": run.experiment,
        "status": run.status.value,
        "start_time": run.start_time,
        "end_time": run.end_time,
        "parent_run_id": run.parent_run_id,
        "params": run.params,
        "metrics": {k: json_number(m.value) for k, m in run.metrics.items()},
        "tags": {k: v for k, v in run.tags.items() if not k.startswith("hone.") or v},
    }


def runs_router(ws: Opened) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["runs"])
    db = ws.db

    @router.get("/experiments", summary="Every experiment with how many runs it holds")
    def experiments() -> list[dict[str, Any]]:
        return [{"name": k, "runs": v} for k, v in queries.runs_per_experiment(db).items()]

    @router.get("/runs", summary="One page of runs matching a filter, in order")
    def runs(
        experiment: list[str] = Query(default=[], description="Only these experiments."),
        filter: str = Query(default="", description="The run filter language."),
        order_by: list[str] = Query(default=[], description="e.g. 'metrics.acc desc'."),
        offset: int = Query(default=0, ge=0, description="Runs to skip."),
        limit: int = Query(default=50, ge=1, le=MAX_PAGE, description="Runs in this page."),
        total: bool = Query(
            default=True,
            description="Count every match too (the page asks /api/runs/count beside instead).",
        ),
    ) -> Response:
        with _parameter("filter"):
            parse_filter(filter or None)
        with _parameter("order_by"):
            parse_order_by(order_by or None)
        found = queries.search_runs(
            db,
            experiment=experiment or None,
            filter=filter or None,
            order_by=order_by or None,
            max_results=limit,
            offset=offset,
        )
        count = (
            queries.count_runs(db, experiment=experiment or None, filter=filter or None)
            if total
            else None
        )
        return json_response(
            {
                "total": count,
                "offset": offset,
                "limit": limit,
                "runs": [table_row(r) for r in found],
            }
        )

    @router.get("/runs/count", summary="How many runs match a filter")
    def count(
        experiment: list[str] = Query(default=[], description="Only these experiments."),
        filter: str = Query(default="", description="The run filter language."),
    ) -> dict[str, int]:
        with _parameter("filter"):
            parse_filter(filter or None)
        return {
            "total": queries.count_runs(db, experiment=experiment or None, filter=filter or None)
        }

    @router.get("/runs/keys", summary="Param, metric and tag keys: the table's columns")
    def keys(experiment: list[str] = Query(default=[])) -> dict[str, list[str]]:
        return queries.run_keys(db, experiment=experiment or None)

    @router.get("/runs/{run_id}", summary="Everything recorded about one run")
    def run(run_id: str) -> dict[str, Any]:
        found = queries.get_run(db, run_id)
        children = queries.search_runs(
            db, filter=f"parent_run_id = '{found.id}'", max_results=MAX_PAGE
        )
        checkpoints = list_checkpoints(db, found.id)
        return {
            **found.to_dict(),
            "duration": found.duration,
            "children": [table_row(r) for r in children],
            "checkpoints": [
                {**c.to_dict(), "blobs_present": ws.blobs.exists(c.weights)} for c in checkpoints
            ],
            "quarantined": [q.to_dict() for q in quarantined_records(db, found.id)],
        }

    @router.get("/runs/{run_id}/metric", summary="A metric's whole history, as columns")
    def metric(
        run_id: str,
        key: str = Query(..., description="The metric's key."),
        after_step: int | None = Query(
            default=None, description="Only the points past this step (a live chart's update)."
        ),
    ) -> Response:
        found = queries.metric_columns(db, run_id, key, after_step=after_step)
        # A NaN is None already; an infinity travels as null (JSON has neither).
        return json_response(
            {"key": key, "step": found.step, "value": found.value, "time": found.time}
        )

    @router.get("/runs/{run_id}/artifacts/{path:path}", summary="Download an artifact")
    def artifact(run_id: str, path: str) -> StreamingResponse:
        found = queries.get_run(db, run_id)
        match = next((a for a in found.artifacts if a.path == path), None)
        if match is None:
            raise NotFoundError(f"run {found.id} has no artifact {path!r}")
        if not ws.blobs.exists(match.digest) or ws.blobs.size(match.digest) != match.size:
            # Checked before the answer starts: a short blob would cut the download midway.
            raise BlobError(
                f"artifact {path!r} of run {found.id}: its blob {match.digest[:12]} is missing "
                f"or not {match.size:,} bytes long (the blob store lost or damaged it)"
            )
        name = path.rsplit("/", 1)[-1].replace('"', "")

        def chunks() -> Iterator[bytes]:
            # Opened when the answer is sent: a client gone before that leaves nothing open.
            with ws.blobs.open(match.digest) as stream:
                while block := stream.read(1 << 20):
                    yield block

        # Always a download, never rendered here: an HTML artifact must not run as this UI.
        return StreamingResponse(
            chunks(),
            media_type="application/octet-stream",
            headers={
                "content-disposition": f"attachment; filename*=UTF-8''{quote(name, safe='')}",
                "content-length": str(match.size),
            },
        )

    @router.get("/compare", summary="Several runs side by side")
    def compare(
        run: list[str] = Query(..., description="Run ids (2 or more)."),
    ) -> dict[str, Any]:
        if not 2 <= len(run) <= MAX_COMPARE:
            raise ValidationError(f"compare takes 2 to {MAX_COMPARE} runs, got {len(run)}")
        found = [queries.get_run(db, r) for r in run]
        return {"runs": [{**table_row(r), "duration": r.duration} for r in found]}

    @router.get("/studies/{name}", summary="A study's trials, best trial and importances")
    def study(name: str) -> dict[str, Any]:
        from hone.tune.report import study_report

        return study_report(db, name)

    return router
