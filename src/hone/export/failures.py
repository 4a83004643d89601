"""An exporter's failure said in one line: the operator it could not convert, or the line
of the model's code it could not trace, and what to do instead."""

from __future__ import annotations

import re
import traceback

from hone.errors import ValidationError

__all__ = ["ExportError", "explain"]

_NO_FUNCTION = re.compile(r"No ONNX function found for <OpOverload\(op='([^']+)'")
_NO_KERNEL = re.compile(r"Could not find an implementation for (\w+)\((\d+)\)")
_NOT_THE_MODEL = ("/torch/", "/onnxscript/", "/onnx_ir/", "/hone/export/", "/contextlib.py")
_USER_CODE = re.compile(r'File "([^"]+)", line (\d+), in (\w+)\n\s+(.+)')


class ExportError(ValidationError):
    """An export that failed or did not match the eager model: nothing was recorded."""


def explain(exc: BaseException, fmt: str, ref: str) -> ExportError:
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and len(chain) < 20:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    text = "\n".join(str(e) for e in chain)
    instead = ", ".join(f for f in ("onnx", "pt2", "safetensors") if f != fmt)
    found = _NO_FUNCTION.search(text)
    if found:
        return ExportError(
            f"{fmt} export of {ref} failed: PyTorch operator {found.group(1)} has no ONNX "
            f"conversion; export another format ({instead}) or build the model without it"
        )
    found = _NO_KERNEL.search(text)
    if found:
        return ExportError(
            f"{fmt} export of {ref} failed: onnxruntime has no kernel for operator "
            f"{found.group(1)} (opset {found.group(2)}); export another format ({instead})"
        )
    root = chain[-1]
    first = (str(root).strip().splitlines() or [type(root).__name__])[0][:300]
    where = _user_code(text, chain)
    return ExportError(
        f"{fmt} export of {ref} failed: {type(root).__name__}: {first}"
        + (f" (at {where})" if where else "")
    )


def _user_code(text: str, chain: list[BaseException]) -> str:
    """The line of the model's own code the exporter stopped at, if it said."""
    found = _USER_CODE.search(text)
    if found:
        path, line, _, code = found.groups()
        return f"{path.rsplit('/', 1)[-1]} line {line}: {code.strip()[:120]}"
    for exc in reversed(chain):
        frames = [
            f
            for f in traceback.extract_tb(exc.__traceback__)
            if not any(part in f.filename for part in _NOT_THE_MODEL)
        ]
        if frames:
            f = frames[-1]
            code = (f.line or "").strip()[:120]
            return f"{f.filename.rsplit('/', 1)[-1]} line {f.lineno}: {code}"
    return ""
