"""A study's worker process, as ``hone tune --parallel P`` starts it: ``python -m
hone.tune.worker`` with its part in ``HONE_TUNE_JOB``. It runs trials of the study until
none is left to claim.

Exit status: 0 when no trial is left (or the time is up); 3 when the study cannot go on
(the reason on stderr, after ``hone tune: ``); 130 when stopped (its running trial is
failed as interrupted and its budget given back).
"""

from __future__ import annotations

import json
import os
import sys
import time

from hone.errors import HoneError


def main() -> int:
    text = os.environ.get("HONE_TUNE_JOB")
    if not text:
        print(
            "hone.tune.worker: HONE_TUNE_JOB is not set: start studies with hone tune",
            file=sys.stderr,
        )
        return 2
    from hone.tracking.start import workspace_of
    from hone.tracking.tracker import get_tracker
    from hone.train.recipes import load_recipe
    from hone.tune import quiet_optuna, signals
    from hone.tune.driver import StudyStopped, work
    from hone.tune.objectives import RecipeTrials
    from hone.tune.space import parse_space
    from hone.tune.studies import get_study
    from hone.tune.study import open_study
    from hone.tune.workers import INDEX_ENV

    quiet_optuna()
    job = json.loads(text)
    try:
        workspace = workspace_of(job["workspace"])
        db = get_tracker(workspace).db
        record = get_study(db, job["study"])
        objective = RecipeTrials(**job["objective"])
        if job.get("space") is not None:
            space = parse_space(job["space"], "--space")
        else:
            loaded = load_recipe(objective.recipe)
            space = parse_space(getattr(loaded.obj, "search_space", None), f"recipe {loaded.ref}")
        study, _ = open_study(
            workspace,
            db,
            record.name,
            record.config,
            space,
            budget=None,
            resume=False,
            create_run=None,
            worker_index=int(os.environ.get(INDEX_ENV, "1")),
        )
        seconds = job.get("seconds")
        deadline = None if seconds is None else time.monotonic() + float(seconds)
        try:
            with signals.interruptible():
                work(study, objective, deadline=deadline)
        finally:
            study.absent()
    except KeyboardInterrupt:
        return 130
    except StudyStopped as exc:
        print(f"hone tune: {exc}", file=sys.stderr, flush=True)
        return 3
    except HoneError as exc:
        print(f"hone tune: {exc}", file=sys.stderr, flush=True)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
