"""The model registry's workflows: register a checkpoint as a version (lineage, signature,
verified exports), move aliases (by hand or through a promotion gate), evaluate, export,
and ``load`` a version as a predictor that needs neither PyTorch nor the recipe's code.

    import hone.models
    predictor = hone.models.load("digits@champion")
    labels, probabilities = predictor.predict(raw_rows)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hone.export.predictor import Prediction, Predictor, Signature
    from hone.models.evaluation import Evaluation, evaluate
    from hone.models.exporting import export
    from hone.models.loading import load
    from hone.models.manage import alias, delete, get, history, models, show, versions
    from hone.models.promotion import Promotion, promote
    from hone.models.registering import Registered, register

__all__ = [
    "Evaluation",
    "Prediction",
    "Predictor",
    "Promotion",
    "Registered",
    "Signature",
    "alias",
    "delete",
    "evaluate",
    "export",
    "get",
    "history",
    "load",
    "models",
    "promote",
    "register",
    "show",
    "versions",
]

# Loaded on first use: ``load`` must not pay for PyTorch, ``register`` needs it.
_WHERE = {
    "Prediction": "hone.export.predictor",
    "Predictor": "hone.export.predictor",
    "Signature": "hone.export.predictor",
    "Evaluation": "hone.models.evaluation",
    "evaluate": "hone.models.evaluation",
    "export": "hone.models.exporting",
    "load": "hone.models.loading",
    "alias": "hone.models.manage",
    "delete": "hone.models.manage",
    "get": "hone.models.manage",
    "history": "hone.models.manage",
    "models": "hone.models.manage",
    "show": "hone.models.manage",
    "versions": "hone.models.manage",
    "Promotion": "hone.models.promotion",
    "promote": "hone.models.promotion",
    "Registered": "hone.models.registering",
    "register": "hone.models.registering",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'hone.models' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_WHERE[name]), name)
