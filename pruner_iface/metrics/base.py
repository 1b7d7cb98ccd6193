"""Metric: a score per weight element, reduced by the target to one score per unit.

Metrics that need data (`requires_data`) learn from gradients: either from ``data``/``loss_fn``
batches in :meth:`Pruner.run` (via :meth:`Metric.collect`), or from the user's own backward pass
in the training-loop hooks (via :meth:`Metric.observe` at ``on_before_optimizer_step``).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Iterable, Optional

import torch
from torch import nn

from ..distributed import average_gradients_
from ..errors import InputError, MissingDataError
from ..inputs import eval_mode
from ..registry import Registry, check
from ..targets.base import REDUCTIONS, TargetLayer


@dataclass
class Metric(ABC):
    """Scores weights; `reduce` (sum, mean, max) turns element scores into unit scores."""

    reduce: str = "sum"

    requires_data = False
    # element scores estimate a loss change: a unit's score is their plain sum, comparable across
    # layers and unit kinds (heads vs neurons); otherwise each member tensor is normalised first
    additive: ClassVar[bool] = False
    state_keys: ClassVar[tuple[str, ...]] = ()  # run-time state a saved run keeps (see checkpoint.py)

    def __post_init__(self) -> None:
        check(self.reduce in REDUCTIONS, "reduce", f"{self.reduce!r} is not one of {', '.join(REDUCTIONS)}")

    @abstractmethod
    def element_scores(self, layer: TargetLayer) -> torch.Tensor:
        """A tensor of the weight's shape; higher means more important."""

    def reset(self) -> None:
        """Forget accumulated statistics (called before each data pass)."""

    def after_prune(self) -> None:
        """Called after masks were updated in the training-loop hooks."""
        self.reset()

    def observe(self, layers: list[TargetLayer]) -> None:
        """Accumulate statistics from the gradients now in ``layer.weight.grad``."""

    def collect(self, model: nn.Module, layers: list[TargetLayer], data: Iterable, loss_fn: Callable) -> None:
        """Run the data pass this metric needs (no-op for data-free metrics)."""


def check_batches(batches) -> None:
    """`batches` of a data metric: how many batches to learn from (None: all of them)."""
    check(batches is None or (isinstance(batches, int) and not isinstance(batches, bool) and batches >= 1),
          "batches", f"must be a positive integer or null (all batches); got {batches!r}")


@dataclass
class DataMetric(Metric):
    """A metric that learns from data batches; `batches` caps how many (None: all)."""

    batches: Optional[int] = None

    requires_data = True

    def __post_init__(self) -> None:
        super().__post_init__()
        check_batches(self.batches)
        self.reset()


class UnitMetric(Metric):
    """Scores whole units of a graph-aware target (heads, neurons, channels) from what flows
    through them, rather than weight elements."""

    def element_scores(self, layer) -> torch.Tensor:
        raise InputError(f"metric {self.registered_name!r} scores whole units of the graph-aware targets "
                         f"(channel, head, mlp, hidden); {getattr(layer, 'name', layer)!r} has no such units")

    @abstractmethod
    def unit_scores(self, layer: TargetLayer) -> torch.Tensor:
        """One score per unit of `layer`; higher means more important."""


@dataclass
class ActivationMetric(DataMetric):
    """A data metric that reads activations in ``run``: no gradients to observe in the hooks."""

    def observe(self, layers) -> None:
        raise InputError(f"metric {self.registered_name!r} reads activations in Pruner.run(data=..., loss_fn=...); "
                         f"it cannot learn from gradients in the training-loop hooks")


@dataclass
class ActivationUnitMetric(UnitMetric, ActivationMetric):
    """An activation metric whose :meth:`collect` stores each layer's unit scores in ``_scores``."""

    def reset(self) -> None:
        self._scores: dict[int, torch.Tensor] = {}

    def unit_scores(self, layer) -> torch.Tensor:
        if id(layer) not in self._scores:
            raise InputError(f"metric {self.registered_name!r} has seen no data: pass data and loss_fn to run()")
        return self._scores[id(layer)]


def unit_slices(layer: TargetLayer, who: str) -> list[list]:
    """Per unit, the (TensorRef, dim, indices, consumes) of every parameter slice it covers;
    `consumes`: a layer input (weight columns) that reads the unit. Only coupled-group layers
    have them; `who` (e.g. "metric 'apoz'") is named in the error."""
    groups = getattr(layer, "groups", None)
    if groups is None:
        raise InputError(f"{who} needs a graph-aware target (channel, head, mlp, hidden); "
                         f"layer {layer.name!r} has no coupled groups")
    return layer.slices_per_unit()


def consumer_slices(layer: TargetLayer, who: str) -> list[list]:
    """Per unit, the (TensorRef, dim, indices) of the layer inputs that read it (weight columns):
    where its output goes."""
    per_unit = [[(ref, dim, idx) for ref, dim, idx, consumes in unit if consumes] for unit in unit_slices(layer, who)]
    if any(not slices for slices in per_unit):
        raise InputError(f"{who}: some units of {layer.name!r} reach no layer input (their "
                         f"output is read by no Linear/conv); use a weight metric such as 'l2' for them")
    return per_unit


def run_backward_passes(
    model: nn.Module,
    layers: list[TargetLayer],
    data: Iterable,
    loss_fn: Callable[[nn.Module, Any], torch.Tensor],
    batches: int | None,
    on_batch: Callable[[], None],
    metric_name: str,
) -> None:
    """Backward `loss_fn(model, batch)` over `data` and call `on_batch` after each backward.

    The model is run in eval mode (BatchNorm statistics and dropout untouched) and its
    ``.grad`` fields and ``requires_grad`` flags are restored afterwards.
    """
    if data is None or loss_fn is None:
        raise MissingDataError(
            f"metric {metric_name!r} needs gradients: pass data=<iterable of batches> and "
            f"loss_fn=<callable(model, batch) -> scalar loss> to Pruner.run"
        )
    params = list(model.parameters())
    saved_grads = [p.grad for p in params]
    saved_flags = [p.requires_grad for p in params]
    seen = 0
    try:
        for layer in layers:
            layer.weight.requires_grad_(True)
        with eval_mode(model):
            seen = _backward_each(model, params, data, loss_fn, batches, on_batch)
    finally:
        for p, g, flag in zip(params, saved_grads, saved_flags):
            p.grad = g
            p.requires_grad_(flag)
    if seen == 0:
        raise MissingDataError(
            f"metric {metric_name!r}: data yielded no batch (an exhausted iterator? pass a list or DataLoader)"
        )


def run_forward_passes(
    model: nn.Module,
    modules,
    hook: Callable[[nn.Module, tuple], None],
    data: Iterable,
    loss_fn: Callable[[nn.Module, Any], Any],
    batches: int | None,
    who: str,
) -> None:
    """Forward `loss_fn(model, batch)` over `data` (no gradients, eval mode) with `hook` as a
    forward pre-hook on each of `modules`; the hooks are removed afterwards, whatever happens.
    `who` (e.g. "metric 'wanda'") is named in errors."""
    if data is None or loss_fn is None:
        raise MissingDataError(f"{who} needs activations: pass data=<batches> and "
                               f"loss_fn=<callable(model, batch)> (only its forward pass is used) to Pruner.run")
    handles = [m.register_forward_pre_hook(hook) for m in modules]
    seen = 0
    try:
        with torch.no_grad(), eval_mode(model):
            for batch in data:
                if batches is not None and seen >= batches:
                    break
                loss_fn(model, batch)
                seen += 1
    finally:
        for h in handles:
            h.remove()
    if seen == 0:
        raise MissingDataError(f"{who}: data yielded no batch (an exhausted iterator?)")


def _backward_each(model, params, data, loss_fn, batches, on_batch) -> int:
    seen = 0
    for batch in data:
        if batches is not None and seen >= batches:
            break
        for p in params:
            p.grad = None
        loss = loss_fn(model, batch)
        if not (isinstance(loss, torch.Tensor) and loss.numel() == 1 and loss.requires_grad):
            raise InputError(
                f"loss_fn must return a scalar tensor that requires grad; got "
                f"{type(loss).__name__}{tuple(loss.shape) if isinstance(loss, torch.Tensor) else ''}"
            )
        loss.backward()
        average_gradients_(params)  # several ranks: the gradient of the union of their batches
        on_batch()
        seen += 1
    return seen


def weight_grad(layer: TargetLayer, metric_name: str) -> torch.Tensor:
    grad = layer.weight.grad
    if grad is None:
        raise InputError(
            f"metric {metric_name!r}: module {layer.name!r} has no gradient for {layer.param_name!r}; "
            f"is it used by the loss, does it require grad, and was backward() called before on_before_optimizer_step()?"
        )
    return grad.detach()


METRICS: Registry[Metric] = Registry("metric", Metric)
register_metric = METRICS.register
