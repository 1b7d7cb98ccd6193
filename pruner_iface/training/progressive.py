"""`progressive`: Intel Neural Compressor's progressive pruning — the units a pruning step removes
are zeroed over `steps` sub-steps instead of at once: sub-step j (j = 1..steps) zeroes, inside
every newly pruned unit, the lowest-scoring ⌈j·size/steps⌉ of its elements (other tensors the
unit touches, such as a row's bias, at the last sub-step). Sub-steps are
frequency // steps optimizer steps apart, so a unit is fully pruned before the next pruning
step. As in INC, it falls back to pruning at once when end − start ≤ steps or the interval
would be 0 (frequency < steps); the report says so.

Units must be pieces of one tensor (element, block, n:m, channel-local rows); the members'
element scores rank the elements, or |w| under a unit metric.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ..errors import ConfigError
from ..masks import set_mask
from ..registry import check
from ..targets.base import TensorLayer
from .base import Mechanism, register_mechanism


@register_mechanism("progressive")
@dataclass
class Progressive(Mechanism):
    steps: int = 4

    stages_masks = True
    state_keys = ("_pending",)
    _pending: dict = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        check(isinstance(self.steps, int) and not isinstance(self.steps, bool) and self.steps >= 2,
              "steps", f"must be an integer >= 2; got {self.steps!r}")

    def bind(self, context) -> None:
        super().bind(context)
        wrong = [layer.name for layer in context.layers if not isinstance(layer, TensorLayer)]
        if wrong:
            raise ConfigError(
                f"training.progressive: zeroes a unit's elements in score order, so units must be pieces of one "
                f"tensor (targets element, block, n:m, channel-local); layers {wrong[:5]} are coupled groups")
        sched = context.scheduler
        self.interval = sched.frequency // self.steps
        self.active = self.interval >= 1 and sched.end - sched.start > self.steps

    def on_train_begin(self) -> None:
        self._pending = {}

    def stage(self, step, changes):
        if not self.active:
            return [change.masks for change in changes]
        now = []
        for change in changes:
            layer = change.layer
            key = (layer.module, layer.param_name)
            final = change.masks[key]
            scores = change.member_scores[0] if change.member_scores else layer.weight.detach().abs()
            grouped = layer.group(scores.float())
            rank = torch.empty_like(grouped, dtype=torch.long)
            rank.scatter_(1, grouped.argsort(dim=1, stable=True),
                          torch.arange(grouped.shape[1]).expand_as(grouped).contiguous())
            fresh = (change.after & ~change.before).unsqueeze(-1)
            final_grouped = layer.group(final)
            size = grouped.shape[1]
            now.append({key: layer.ungroup(final_grouped | (fresh & (rank >= math.ceil(size / self.steps))))})
            for j in range(2, self.steps + 1):
                keep = layer.ungroup(final_grouped | (fresh & (rank >= math.ceil(j * size / self.steps))))
                staged = [(key, keep)] + ([(k, v) for k, v in change.masks.items() if k != key] if j == self.steps else [])
                self._pending.setdefault(step + (j - 1) * self.interval, []).extend(staged)
        return now

    def on_step_begin(self, step: int) -> None:
        for due in sorted(s for s in self._pending if s <= step):
            for (module, param_name), keep in self._pending.pop(due):
                set_mask(module, param_name, keep)

    def on_train_end(self) -> None:
        """Sub-steps that training did not reach are applied now, so the objective holds."""
        self.on_step_begin(max(self._pending, default=-1))

    def notes(self) -> dict:
        return {"progressive": f"{self.steps} sub-steps, {self.interval} optimizer steps apart" if self.active
                else "fell back to pruning at once (needs end - start > steps and frequency >= steps)"}
