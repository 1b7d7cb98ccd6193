"""`wanda`: |W_ij|·‖X_j‖₂, the weight's magnitude times the L2 norm of the input feature it reads
over the calibration data (Sun et al., "A Simple and Effective Pruning Approach for Large
Language Models", ICLR 2024). No weight update. The paper compares weights within each output
row: use it with ``{"name": "element", "scope": "row"}`` (or an n:m target, whose groups lie in a
row already).

Input features: a Linear's columns, a conv's input channels (each kernel position of a channel
shares that channel's norm), a Hugging Face Conv1D's rows. One-dimensional members of a coupled
channel group (biases, norm scales) read no input and score |w|.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.modules.conv import _ConvNd

from ..distributed import sum_across_ranks_
from ..errors import InputError
from .base import ActivationMetric, register_metric, run_forward_passes


def _input_axis(module: nn.Module, weight: torch.Tensor) -> int | None:
    """The weight dim that indexes input features (None: this module is not supported)."""
    if isinstance(module, nn.Linear):
        return 1
    if isinstance(module, _ConvNd) and not module.transposed:
        return 1
    if isinstance(getattr(module, "nx", None), int) and weight.dim() == 2 and weight.shape[0] == module.nx:
        return 0  # Hugging Face Conv1D: y = x @ W, W is [in, out]
    return None


@register_metric("wanda")
@dataclass
class Wanda(ActivationMetric):

    def reset(self) -> None:
        self._squares: dict[nn.Module, torch.Tensor] = {}

    def collect(self, model, layers, data, loss_fn) -> None:
        modules = {}
        for member in layers:  # the pruner passes the member tensors an element metric scores
            if member.weight.dim() >= 2:
                self._check_supported(member)
                modules[member.module] = member
        squares: dict[nn.Module, torch.Tensor] = {}

        def hook(module, inputs):
            x = inputs[0].detach().float()
            axis = 1 if isinstance(module, _ConvNd) else -1
            per_feature = x.movedim(axis, 0).reshape(x.shape[axis], -1).pow(2).sum(1)
            squares[module] = per_feature if module not in squares else squares[module] + per_feature

        run_forward_passes(model, modules, hook, data, loss_fn, self.batches, f"metric {self.registered_name!r}")
        sum_across_ranks_(squares[m] for m in modules if m in squares)
        self._squares = squares

    def _check_supported(self, member) -> int:
        axis = _input_axis(member.module, member.weight)
        if axis is None:
            raise InputError(f"metric 'wanda': module {member.name!r} ({type(member.module).__name__}) has no input "
                             f"features wanda understands; supported: Linear, Conv1d/2d/3d, Hugging Face Conv1D")
        return axis

    def element_scores(self, layer) -> torch.Tensor:
        weight = layer.weight.detach().float()
        if weight.dim() < 2:
            return weight.abs()
        axis = self._check_supported(layer)
        if layer.module not in self._squares:
            raise InputError(f"metric 'wanda' has no activations for {layer.name!r}: pass data and loss_fn to "
                             f"run() (and make sure the forward pass reaches that module)")
        norms = self._squares[layer.module].sqrt()
        if axis == 0:
            return weight.abs() * norms.reshape(-1, 1)
        groups = getattr(layer.module, "groups", 1)
        per_group_in = weight.shape[1]
        per_group_out = weight.shape[0] // groups
        columns = norms.reshape(groups, per_group_in).repeat_interleave(per_group_out, 0)  # [out, in/groups]
        return weight.abs() * columns.reshape(*columns.shape, *[1] * (weight.dim() - 2))
