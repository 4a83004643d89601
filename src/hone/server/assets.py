"""Where the built pages are: ``static/`` inside the package, made by ``make ui`` (esbuild
over ``ui/``, with the packages ``ui/package-lock.json`` pins) and shipped in the wheel."""

from __future__ import annotations

from pathlib import Path

from hone.errors import UserError

__all__ = ["static_dir"]

STATIC = Path(__file__).with_name("static")


def static_dir() -> Path:
    needed = ("index.html", "docs.html", "assets/app.js", "assets/swagger/swagger-ui-bundle.js")
    if not all((STATIC / name).is_file() for name in needed):
        raise UserError(
            f"the UI's pages are not built ({STATIC} lacks some of {', '.join(needed)}): "
            "run `make ui` in hone's source tree (needs Node.js and npm)"
        )
    return STATIC
