"""`PruningCallback`: a Hugging Face ``Trainer`` callback that calls the Pruner's five hooks, so
step-driven pruning, gradient metrics and training-time mechanisms run inside ``Trainer.train``.

The Trainer's global step (optimizer steps, counting gradient accumulation once) is the
schedule's step; gradients are read after clipping, just before the optimizer steps.
"""
from __future__ import annotations

from typing import Callable, Optional

try:
    from transformers import TrainerCallback
except ImportError as exc:  # pragma: no cover - the message is the point
    raise ImportError("pruner_iface.integrations.hf needs transformers: pip install 'pruner-iface[hf]'") from exc

from ..pruner import Pruner
from ..report import Report


class PruningCallback(TrainerCallback):
    """``Trainer(..., callbacks=[PruningCallback(pruner)])``; the run's Report is ``.report``
    after training. `evaluate(model)` is passed on to allocators that search."""

    def __init__(self, pruner: Pruner, evaluate: Optional[Callable] = None):
        if not isinstance(pruner, Pruner):
            raise TypeError(f"PruningCallback needs a pruner_iface.Pruner; got {type(pruner).__name__}")
        self.pruner = pruner
        self.evaluate = evaluate
        self.report: Optional[Report] = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.pruner.on_train_begin(self.evaluate)

    def on_step_begin(self, args, state, control, **kwargs):
        self.pruner.on_step_begin(state.global_step)

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        self.pruner.on_before_optimizer_step()

    def on_optimizer_step(self, args, state, control, **kwargs):
        self.pruner.on_after_optimizer_step()

    def on_train_end(self, args, state, control, **kwargs):
        self.report = self.pruner.on_train_end()
