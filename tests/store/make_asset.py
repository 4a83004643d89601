"""Write tests/store/assets/hone-<revision>.sqlite with the current schema (run by hand
once per new revision, so every older schema stays covered by the upgrade test).

The database holds one run and, from revision 0002, one dataset version (its blobs are
not kept: the upgrade test reads metadata only)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import hone
from hone.store.migrations import head_revision


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ws = hone.init(Path(tmp) / "ws")
        with hone.start_run(
            "legacy", name="from-an-older-hone", params={"lr": 0.01}, workspace=ws
        ) as run:
            run.log_metric("loss", 0.25)
        if head_revision() >= "0002":
            hone.data.import_dataset("legacy", "sklearn:iris", workspace=ws)
        target = Path(__file__).parent / "assets" / f"hone-{head_revision()}.sqlite"
        from hone.tracking.tracker import close_trackers

        close_trackers()
        shutil.copy(ws.home / "hone.db", target)
        print(f"wrote {target}")


if __name__ == "__main__":
    main()
