"""The feedback loop: labeled predictions → a new dataset version → a challenger trained
on it → promoted through the gate when it beats the champion (layer 3: it drives the
training, registry and predictions libraries; pipelines will run it as a built-in graph)."""

from hone.loop.cycle import DEFAULT_GATE, LoopResult, new_labels, run_loop

__all__ = ["DEFAULT_GATE", "LoopResult", "new_labels", "run_loop"]
