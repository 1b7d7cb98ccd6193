"""`least_squares`: refit what reads a pruned unit so that its output changes as little as
possible. When a step prunes units, every consumer y = W·x + b (a Linear, a Hugging Face Conv1D,
a Conv1d/Conv2d) loses the columns P that read them. Its kept columns K (and its bias, through a
constant input of 1) are refitted to the dense output over the calibration inputs:

    min over W'_K  Σ ||W·x + b − W'_K·x_K||²   ⇒   W'_K = W_K + W_P·H_PK·(H_KK + λI)⁻¹

with H = Σ x·xᵀ the consumer's input Gram matrix and λ = `damp`·mean(diag H_KK). This is the
reconstruction step of channel pruning by least squares (He et al., "Channel Pruning for
Accelerating Very Deep Neural Networks", ICCV 2017; Luo et al., ThiNet, ICCV 2017) and the mask
tuning of Kwon et al. ("A Fast Post-Training Pruning Framework for Transformers", NeurIPS 2022),
solved in closed form; FLAP's `bias_compensation` is the special case that refits the bias alone
(the Pruner accepts one calibration mechanism per run).

Each consumer is refitted on the inputs it sees in the model as it is before the step, all in
one pass (the layer-by-layer variants re-read each layer's inputs after the layers before it
are pruned). The masked model and the shrunk one compute the same thing: only kept columns
change. `bias`: "refit" a consumer's bias where it has one, "add" one where it has none (Linear
and conv layers whose own outputs this target does not prune), or "keep" biases as they are.
Memory: one float64 Gram matrix per consumer, (columns + 1)² entries (a conv's columns are its
in-channels × kernel positions per group).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.modules.conv import _ConvNd

from ..distributed import sum_across_ranks_
from ..errors import ConfigError, PrunerError
from ..feature_stats import ordered_modules, unfolded
from ..metrics.base import check_batches, consumer_slices, run_forward_passes
from ..registry import check
from ..targets.base import from_matrix, matrix_view
from .base import MaskChange, Mechanism, register_mechanism
from .consumers import check_new_biases, ensure_bias

WHO = "training mechanism 'least_squares'"
BIAS = ("refit", "add", "keep")


@register_mechanism("least_squares")
@dataclass
class LeastSquares(Mechanism):
    damp: float = 0.01
    bias: str = "refit"
    batches: int | None = None

    requires_data = True
    state_keys = ("_refitted", "_energy")

    def __post_init__(self) -> None:
        check(isinstance(self.damp, (int, float)) and not isinstance(self.damp, bool) and self.damp >= 0,
              "damp", f"must be a number >= 0 (a fraction of the Gram matrix's mean diagonal); got {self.damp!r}")
        check(self.bias in BIAS, "bias", f"must be one of {', '.join(BIAS)}; got {self.bias!r}")
        check_batches(self.batches)

    def bind(self, context) -> None:
        super().bind(context)
        self._plans = {id(layer): consumer_slices(layer, WHO) for layer in context.layers}
        for plan in self._plans.values():
            for ref, dim, _ in (s for unit in plan for s in unit):
                _check_consumer(ref, dim)
        if self.bias == "add":
            check_new_biases(self._plans, context.layers, WHO)
        self._grams: dict[nn.Module, torch.Tensor] = {}
        self._refitted = 0
        self._energy = [0.0, 0.0]  # output error on the calibration inputs without and with the refit

    def collect(self, model, data, loss_fn) -> None:
        grams: dict[nn.Module, torch.Tensor] = {}

        def hook(module, inputs):
            x = unfolded(module, inputs[0].detach().double())
            z = torch.cat([x, x.new_ones(*x.shape[:2], 1)], -1)  # the constant input that reads the bias
            gram = z.transpose(1, 2) @ z
            grams[module] = gram if module not in grams else grams[module] + gram

        modules = {ref.module for plan in self._plans.values() for unit in plan for ref, _, _ in unit}
        run_forward_passes(model, modules, hook, data, loss_fn, self.batches, WHO)
        sum_across_ranks_(grams[m] for m in ordered_modules(modules, model) if m in grams)
        self._grams = grams

    def reconstruct(self, changes: list[MaskChange]) -> list[MaskChange]:
        pruned: dict[nn.Module, list[torch.Tensor]] = {}
        names: dict[nn.Module, str] = {}
        for change in changes:
            plan = self._plans[id(change.layer)]
            for unit in (change.after & ~change.before).nonzero().reshape(-1).tolist():
                for ref, _, idx in plan[unit]:
                    pruned.setdefault(ref.module, []).append(idx.reshape(-1))
                    names[ref.module] = ref.name
        refits = []  # everything is solved before any weight is written
        for module, parts in pruned.items():
            if module not in self._grams:
                raise PrunerError(f"{WHO} saw no input for {names[module]!r} in the calibration data; make sure "
                                  f"loss_fn's forward pass reaches it. Nothing was pruned")
            refits.append((module, *self._refit(module, torch.cat(parts).unique(), names[module])))
        with torch.no_grad():
            for module, matrix, bias, before, after in refits:
                _write_matrix(module, matrix)
                if bias is not None:
                    target = ensure_bias(module, bias.numel())
                    target.copy_(bias.to(target.dtype))
                self._refitted += 1
                self._energy[0] += before
                self._energy[1] += after
        return changes

    def _refit(self, module: nn.Module, inputs: torch.Tensor, name: str):
        """The refitted [groups, rows, columns] weight, bias (None when kept) and the output error
        energy on the calibration inputs before and after, for consumed inputs `inputs` going."""
        gram = self._grams[module]
        matrix = _read_matrix(module).to(gram.device)
        groups, rows, columns = matrix.shape
        per_group = _in_per_group(module)
        positions = columns // per_group
        cols = (torch.arange(positions).reshape(-1, 1) * per_group + inputs.to("cpu").reshape(1, -1)).reshape(-1)
        with_bias = self.bias == "add" or (self.bias == "refit" and module.bias is not None)
        bias = module.bias.detach() if module.bias is not None else matrix.new_zeros(groups * rows)
        full = torch.cat([matrix, bias.double().to(gram.device).reshape(groups, rows, 1)], -1)
        keep = torch.ones(columns + 1, dtype=torch.bool)
        keep[cols] = False
        keep[columns] = with_bias
        k, p = keep.nonzero().reshape(-1).to(gram.device), cols.to(gram.device)
        w_p = full[:, :, p]
        h_kk, h_kp = gram[:, k][:, :, k], gram[:, k][:, :, p]
        before = torch.einsum("gri,gij,grj->", w_p, gram[:, p][:, :, p], w_p).item()
        delta = _solve(h_kk, h_kp @ w_p.transpose(1, 2), self.damp, name).transpose(1, 2)  # [groups, rows, |K|]
        after = max(before - 2 * torch.einsum("grk,gkp,grp->", delta, h_kp, w_p).item()
                    + torch.einsum("gri,gij,grj->", delta, h_kk, delta).item(), 0.0)
        full[:, :, k] += delta
        return full[:, :, :columns], (full[:, :, columns].reshape(-1) if with_bias else None), before, after

    def notes(self) -> dict:
        before, after = getattr(self, "_energy", (0.0, 0.0))
        return {"least_squares_refitted": getattr(self, "_refitted", 0),
                "least_squares_error_kept": after / before if before > 0 else None}


def _solve(h_kk: torch.Tensor, rhs: torch.Tensor, damp: float, name: str) -> torch.Tensor:
    """(H_KK + λI)⁻¹·rhs per group; inputs that never fire read as 1 on the diagonal."""
    h = h_kk.clone()
    diag = torch.diagonal(h, dim1=1, dim2=2)
    diag[diag == 0] = 1.0
    diag += damp * diag.mean(-1, keepdim=True)
    chol, info = torch.linalg.cholesky_ex(h)
    if bool((info != 0).any()):
        raise PrunerError(f"{WHO}: the input Gram matrix of {name!r} is not positive definite with damp={damp}; "
                          f"raise damp (e.g. 0.1) or give more calibration data. Nothing was pruned")
    return torch.cholesky_solve(rhs, chol)


def _is_conv1d_hf(module: nn.Module) -> bool:
    """Hugging Face's Conv1D: a Linear whose weight is stored [in, out]."""
    return type(module).__name__ == "Conv1D" and getattr(module, "weight", None) is not None \
        and module.weight.dim() == 2


def _supported(module: nn.Module, param_name: str, dim: int) -> bool:
    if param_name != "weight":
        return False
    if isinstance(module, nn.Linear):
        return dim == 1
    if _is_conv1d_hf(module):
        return dim == 0
    if isinstance(module, (nn.Conv1d, nn.Conv2d)):
        numeric = module.padding == "valid" or not isinstance(module.padding, str)
        return dim == 1 and module.padding_mode == "zeros" and numeric
    return False


def _check_consumer(ref, dim: int) -> None:
    module = ref.module
    if _supported(module, ref.param_name, dim):
        return
    detail = type(module).__name__
    if isinstance(module, _ConvNd):
        detail += f" with padding={module.padding!r}, padding_mode={module.padding_mode!r}"
    raise ConfigError(f"{WHO}: {ref.name!r}.{ref.param_name} ({detail}) reads pruned units; refits are solved "
                      f"for the weight of Linear, Hugging Face Conv1D and Conv1d/Conv2d with zero padding given "
                      f"as numbers or 'valid' (exclude its units, or use bias_compensation)")


def _in_per_group(module: nn.Module) -> int:
    weight = module.weight
    return weight.shape[0] if _is_conv1d_hf(module) else weight.shape[1]


def _read_matrix(module: nn.Module) -> torch.Tensor:
    """The weight as [groups, rows, columns] in `unfolded`'s column order (float64)."""
    weight = module.weight.detach().double()
    if _is_conv1d_hf(module):
        return weight.T.unsqueeze(0)
    groups = getattr(module, "groups", 1)
    return torch.stack([matrix_view(w) for w in weight.chunk(groups, 0)])


def _write_matrix(module: nn.Module, matrix: torch.Tensor) -> None:
    weight = module.weight
    if _is_conv1d_hf(module):
        new = matrix[0].T
    else:
        groups = matrix.shape[0]
        shape = (weight.shape[0] // groups, *weight.shape[1:])
        new = torch.cat([from_matrix(m, shape) for m in matrix])
    weight.copy_(new.to(weight.dtype))
