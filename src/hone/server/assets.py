"""Where the built pages are: ``static/`` inside the package, made by ``make ui`` (esbuild
over ``ui/``, with the packages ``ui/package-lock.json`` pins) and shipped in the wheel."""

from __future__ import annotations

from pathlib import Path

from hone.errors import UserError

__all__ = ["static_dir"]

STATIC = Path(__file__).with_name("static")


def static_dir() -> Path:
    if not (STATIC / "index.html").is_file() or not (STATIC / "assets" / "app.js").is_file():
        raise UserError(
            f"the UI's pages are not built ({STATIC} lacks index.html or assets/app.js): "
            "run `make ui` in hone's source tree (needs Node.js and npm)"
        )
    return STATIC
