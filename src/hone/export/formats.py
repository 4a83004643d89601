"""The three export formats, each as bytes (stored as a blob) and a way to run them back:

- ``onnx``: the served module (preprocessing inside) through PyTorch's ``torch.export``
  based exporter, with a dynamic batch dimension; the signature in the file's metadata.
- ``pt2``: ``torch.export``'s program of the same module (TorchScript is deprecated).
- ``safetensors``: the network's weights, with the recipe, params, signature and
  preprocessing in the file's metadata: what another PyTorch program needs to rebuild it.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata as package_metadata
from typing import Any

import numpy as np
import torch

from hone.errors import HoneError, UserError
from hone.export.build import Built
from hone.export.failures import explain
from hone.export.quiet import quiet
from hone.export.served import Served, output_names

__all__ = ["FORMATS", "Exported", "describe", "export", "runner"]

FORMATS = ("onnx", "safetensors", "pt2")
#: The ONNX opset hone asks for: what onnxruntime 1.18 and later run.
OPSET = 18
INPUT = "input"


@dataclass
class Exported:
    format: str
    data: bytes
    info: dict[str, Any] = field(default_factory=dict)  # opset, package versions


def packages(*names: str) -> dict[str, str]:
    found = {}
    for name in names:
        with contextlib.suppress(package_metadata.PackageNotFoundError):
            found[name] = package_metadata.version(name)
    return found


def served(built: Built) -> Served:
    return Served(built.network, built.transforms, built.classification).eval()


def _example(built: Built, raw: np.ndarray) -> tuple[torch.Tensor]:
    # Two rows: a batch of one would let the exporter fix the batch dimension at 1.
    rows = raw[:2] if len(raw) >= 2 else np.concatenate([raw, raw])[:2]
    return (torch.from_numpy(np.ascontiguousarray(rows)),)


def export(built: Built, fmt: str, raw: np.ndarray, metadata: dict[str, str]) -> Exported:
    """``built`` in ``fmt``; ``raw`` gives example rows; ``metadata`` goes into the file."""
    ref = built.ref
    try:
        if fmt == "onnx":
            return _onnx(built, raw, metadata)
        if fmt == "pt2":
            return _pt2(built, raw)
        return _safetensors(built, metadata)
    except HoneError:
        raise
    except (Exception, SystemExit) as exc:
        raise explain(exc, fmt, ref) from exc


def _onnx(built: Built, raw: np.ndarray, metadata: dict[str, str]) -> Exported:
    try:
        import onnx
        import onnxscript  # noqa: F401  (PyTorch's exporter needs it)
    except ImportError as exc:
        raise UserError(
            f"ONNX export needs {exc.name}, which is not installed: pip install 'hone[models]'"
        ) from None

    module = served(built)
    batch = torch.export.Dim("batch")
    with quiet(), torch.no_grad():
        program = torch.onnx.export(
            module,
            _example(built, raw),
            dynamo=True,
            input_names=[INPUT],
            output_names=output_names(built.classification),
            dynamic_shapes=({0: batch},),
            opset_version=OPSET,
            verbose=False,
        )
    assert program is not None
    proto = program.model_proto
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), OPSET)
    info = {"opset": int(opset), "packages": packages("torch", "onnx", "onnxscript", "onnxruntime")}
    return Exported("onnx", proto.SerializeToString(), info)


def _pt2(built: Built, raw: np.ndarray) -> Exported:
    module = served(built)
    batch = torch.export.Dim("batch")
    with quiet(), torch.no_grad():
        program = torch.export.export(module, _example(built, raw), dynamic_shapes=({0: batch},))
        buffer = io.BytesIO()
        torch.export.save(program, buffer)
    return Exported("pt2", buffer.getvalue(), {"packages": packages("torch")})


def _safetensors(built: Built, metadata: dict[str, str]) -> Exported:
    from safetensors.torch import save

    state = {k: v.detach().contiguous() for k, v in built.network.state_dict().items()}
    data = save(state, metadata=metadata)
    return Exported("safetensors", data, {"packages": packages("torch", "safetensors")})


def runner(exported: Exported, built: Built) -> Callable[[np.ndarray], list[np.ndarray]]:
    """A function running the exported bytes on raw rows, as a user of the file would."""
    if exported.format == "onnx":
        from hone.export.predictor import onnxruntime

        ort = onnxruntime()
        options = ort.SessionOptions()
        options.log_severity_level = 3
        session = ort.InferenceSession(exported.data, options, providers=["CPUExecutionProvider"])
        return lambda raw: list(session.run(None, {INPUT: raw}))
    if exported.format == "pt2":
        with quiet():
            program = torch.export.load(io.BytesIO(exported.data))
        module = program.module()

        def run_pt2(raw: np.ndarray) -> list[np.ndarray]:
            with torch.no_grad():
                return [t.numpy() for t in module(torch.from_numpy(raw))]

        return run_pt2
    from safetensors.torch import load

    rebuilt = _rebuilt(built, load(exported.data))

    def run_weights(raw: np.ndarray) -> list[np.ndarray]:
        with torch.no_grad():
            return [t.numpy() for t in rebuilt(torch.from_numpy(raw))]

    return run_weights


def _rebuilt(built: Built, state: dict[str, torch.Tensor]) -> Served:
    """A fresh network of the recipe with the file's weights: what the file promises."""
    import copy

    network = copy.deepcopy(built.network)
    for parameter in network.parameters():
        parameter.data.zero_()
    network.load_state_dict(state, strict=True)
    return Served(network.eval(), built.transforms, built.classification).eval()


def describe(
    built: Built, name: str, run_id: str, step: int, signature: dict[str, Any]
) -> dict[str, str]:
    """What goes into every exported file's metadata: enough to use it without hone. (Not
    the version number: the same checkpoint exported twice is the same file.)"""
    return {
        "hone.model": name,
        "hone.run": run_id,
        "hone.checkpoint_step": str(step),
        "hone.recipe": str(built.body.get("recipe")),
        "hone.params": json.dumps(built.body.get("params"), sort_keys=True),
        "hone.signature": json.dumps(signature, sort_keys=True),
        "hone.preprocessing": json.dumps(list(built.transforms), sort_keys=True),
    }
