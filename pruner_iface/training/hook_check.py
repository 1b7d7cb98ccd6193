"""HookCheck: catches a training loop that skips a Pruner hook something needs.

It counts the optimizer steps that update the model (a global ``torch.optim`` pre-step hook,
held only while training runs) and the hooks called; a hook called fewer times than the
optimizer stepped is reported at the next hook or at ``on_train_end``, rather than letting a
penalty, a pattern or the schedule's step counter silently do nothing.
"""
from __future__ import annotations

from collections import Counter
import weakref

from torch import nn
from torch.optim.optimizer import register_optimizer_step_pre_hook

from ..errors import PrunerError

WHEN = {
    "on_before_optimizer_step": "after loss.backward() and before optimizer.step()",
    "on_after_optimizer_step": "right after optimizer.step()",
}


class HookCheck:
    def __init__(self, model: nn.Module):
        self.model = model
        self.calls: Counter = Counter()
        self.optimizer_steps = 0
        self._handle = None
        self._params: set[int] = set()

    @property
    def running(self) -> bool:
        return self._handle is not None

    def start(self) -> None:
        self.stop()
        self.calls.clear()
        self.optimizer_steps = 0
        self._params = {id(p) for p in self.model.parameters()}
        ref = weakref.ref(self)  # the global hook must not keep the model alive

        def count(optimizer, args, kwargs) -> None:
            check = ref()
            if check is not None:
                check._count(optimizer)

        self._handle = register_optimizer_step_pre_hook(count)

    def __del__(self) -> None:
        self.stop()

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def _count(self, optimizer) -> None:
        if any(id(p) in self._params for group in optimizer.param_groups for p in group["params"]):
            self.optimizer_steps += 1

    def called(self, hook: str) -> None:
        self.calls[hook] += 1

    def check(self, needs: dict[str, list[str]], where: str) -> None:
        """Raise if a needed hook was called fewer times than the optimizer stepped; `needs`
        maps a hook to who needs it."""
        for hook, who in needs.items():
            if who and self.calls[hook] < self.optimizer_steps:
                self.stop()
                raise PrunerError(
                    f"{' and '.join(who)} need{'s' if len(who) == 1 else ''} {hook}() at every optimizer step, but "
                    f"the optimizer stepped {self.optimizer_steps} times and {hook}() was called "
                    f"{self.calls[hook]} times (found at {where}); call pruner.{hook}() {WHEN[hook]}")
