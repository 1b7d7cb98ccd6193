"""`pattern_lock`: keep the sparsity pattern the model has when training starts (Intel Neural
Compressor / Intel Extension for Transformers): mask = (W ≠ 0) of every target weight, fixed at
``on_train_begin`` and re-applied after every optimizer step, so fine-tuning a sparse model
(e.g. one pruned upstream) cannot revive its zeros.

The masks are ordinary pruning masks: their gradient hook and the global optimizer post-step
hook (pruner_iface.masks) re-apply them after every ``torch.optim`` step, and
``on_after_optimizer_step`` does so for any other optimizer. One-dimensional tensors (biases,
norm scales) are not locked: a zero there is an initial value, not a pruned weight.
"""
from __future__ import annotations

from dataclasses import dataclass


from ..masks import reapply_masks, set_mask
from .base import Mechanism, member_params, register_mechanism


@register_mechanism("pattern_lock")
@dataclass
class PatternLock(Mechanism):

    hooks = ("on_after_optimizer_step",)
    state_keys = ("_locked",)

    def on_train_begin(self) -> None:
        self._locked = 0
        for member, param in member_params(self.context.layers):
            if param.dim() < 2:
                continue
            keep = param.detach() != 0
            if not bool(keep.all()):
                set_mask(member.module, member.param_name, keep)
                self._locked += int((~keep).sum())

    def after_optimizer_step(self) -> None:
        reapply_masks(self.context.model)

    def notes(self) -> dict:
        return {"pattern_lock_zeros": getattr(self, "_locked", 0)}
