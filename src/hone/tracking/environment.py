"""Where a run came from: git commit and dirty diff, interpreter, packages, host.

Gathered once per process and cached: runs are created in tight loops by tuning, and a
``git`` subprocess per run would dominate their cost.
"""

from __future__ import annotations

import getpass
import json
import os
import platform
import socket
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path

__all__ = ["GitState", "RunEnvironment", "capture_environment"]

# Packages whose versions matter for reproducing a deep-learning run.
_PACKAGES = (
    "hone",
    "torch",
    "numpy",
    "scikit-learn",
    "pyarrow",
    "onnx",
    "onnxruntime",
    "optuna",
    "safetensors",
    "pandas",
    "scipy",
    "sqlalchemy",
)


@dataclass(frozen=True)
class GitState:
    commit: str
    dirty: bool
    diff: bytes


@dataclass(frozen=True, eq=False)
class RunEnvironment:
    git: GitState | None
    host: str
    user: str
    source: str
    info: dict[str, object]

    @property
    def info_json(self) -> str:
        return _info_json(self)


@cache
def capture_environment() -> RunEnvironment:
    source = _source()
    start = Path(source).resolve().parent if Path(source).is_file() else Path.cwd()
    info: dict[str, object] = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "packages": _package_versions(),
    }
    return RunEnvironment(
        git=_git_state(start),
        host=storable(socket.gethostname(), 250),
        user=storable(_user(), 250),
        source=storable(source, 4000),
        info=info,
    )


def storable(text: str, limit: int) -> str:
    """``text`` as every store can hold it: bytes that were not UTF-8 (a path from argv,
    kept as surrogate escapes) become U+FFFD, NUL characters go, and it is cut to ``limit``."""
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate that escapes no byte
        raw = text.encode("utf-8", "replace")
    return raw.decode("utf-8", "replace").replace("\x00", "")[:limit]


@cache
def _info_json(env: RunEnvironment) -> str:
    return json.dumps(env.info, sort_keys=True)


def _source() -> str:
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    return os.path.abspath(path) if path else "<interactive>"


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _package_versions() -> dict[str, str]:
    found: dict[str, str] = {}
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def _git(args: list[str], cwd: Path) -> bytes | None:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def _git_state(cwd: Path) -> GitState | None:
    commit = _git(["rev-parse", "HEAD"], cwd)
    if commit is None:
        return None
    status = _git(["status", "--porcelain", "--untracked-files=no"], cwd) or b""
    dirty = bool(status.strip())
    diff = (_git(["diff", "HEAD", "--binary"], cwd) or b"") if dirty else b""
    return GitState(commit=commit.decode().strip(), dirty=dirty, diff=diff)
