"""Real small or read-only filesystems for tests: a tmpfs mounted for the test's duration.

Mounting needs root (CI runs as root). Elsewhere such a test is skipped, except under
``CI=true``, where not being able to mount fails the test: it must never go green by
skipping there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

__all__ = ["tmpfs"]


@contextmanager
def tmpfs(path: Path, *, size: str = "1m", readonly: bool = False) -> Iterator[Path]:
    """Mount a tmpfs of ``size`` at ``path`` (made if missing); unmount it afterwards."""
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if readonly else "")
    mount = shutil.which("mount")
    proc = (
        subprocess.run(
            [mount, "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        if mount
        else None
    )
    if proc is None or proc.returncode != 0:
        reason = proc.stderr.strip() if proc is not None else "no mount command"
        message = f"cannot mount a tmpfs at {path} ({reason})"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{message}; CI must run this test as root")
        pytest.skip(message)
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)
