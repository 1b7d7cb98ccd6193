"""Parameter and FLOP counts that see pruner masks: masked entries are not counted.

FLOPs come from fvcore's FlopCountAnalysis (one multiply-add counts as one FLOP, fvcore's
convention), with handles for the attention ops it skips: scaled_dot_product_attention (the two
products QKᵀ and AV; softmax is not counted, like fvcore's elementwise ops) and baddbmm. A masked weight scales its module's FLOPs by the fraction of weights kept, which
for row (channel) pruning equals the FLOPs of the physically shrunk module.
"""
from __future__ import annotations

import math
import warnings
from typing import Any

import torch
from torch import nn

from .inputs import eval_mode, normalize_inputs, output_tensors
from .masks import masked_params


class _Traceable(nn.Module):
    """Calls the model with positional and keyword inputs and returns only the tensors of its
    output, so that fvcore's jit trace accepts dict inputs and outputs holding other objects
    (Hugging Face caches, dataclasses)."""

    def __init__(self, model: nn.Module, n_args: int, keys: list[str]):
        super().__init__()
        self.model = model
        self.n_args = n_args
        self.keys = keys

    def forward(self, *values):
        out = self.model(*values[: self.n_args], **dict(zip(self.keys, values[self.n_args:])))
        return output_tensors(out)


def _shape(value) -> list[int]:
    return list(value.type().sizes())


def sdpa_flops(inputs, outputs) -> int:
    """QKᵀ and AV of scaled_dot_product_attention: L·S·(E + Ev) per query row of every head
    (grouped-query attention computes per query head too)."""
    q, k, v = (_shape(x) for x in inputs[:3])
    rows = math.prod(q[:-1])  # batch × heads × L
    return rows * k[-2] * (q[-1] + v[-1])


def baddbmm_flops(inputs, outputs) -> int:
    """beta·M + alpha·(A @ B) with A (b, n, p), B (b, p, m): b·n·p·m multiply-adds."""
    a, b = _shape(inputs[1]), _shape(inputs[2])
    return math.prod(a) * b[-1]


ATTENTION_HANDLES = {"aten::scaled_dot_product_attention": sdpa_flops, "aten::baddbmm": baddbmm_flops}


def module_flops(model: nn.Module, example_inputs: Any) -> dict[str, int]:
    """FLOPs of every module (fvcore's by_module); '' is the whole model. Ignores masks."""
    from fvcore.nn import FlopCountAnalysis

    args, kwargs = normalize_inputs(example_inputs)
    traced = _Traceable(model, len(args), list(kwargs))
    with torch.no_grad(), eval_mode(model), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        analysis = FlopCountAnalysis(traced, tuple(args) + tuple(kwargs.values())).set_op_handle(**ATTENTION_HANDLES)
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
        counts = analysis.by_module()
    prefix = "model."
    return {("" if k == "model" else k[len(prefix):]): int(v) for k, v in counts.items()
            if k == "model" or k.startswith(prefix)}


def removed_fraction(mask: torch.Tensor) -> float:
    return 1.0 - float(mask.sum()) / mask.numel()


def count_flops(model: nn.Module, example_inputs: Any) -> int:
    """FLOPs of one forward on `example_inputs`, with masked weights' share removed."""
    per_module = module_flops(model, example_inputs)
    total = float(per_module.get("", 0))
    for name, _, param_name, mask in masked_params(model):
        if param_name == "weight":
            total -= per_module.get(name, 0) * removed_fraction(mask)
    return int(round(total))


def count_params(model: nn.Module) -> int:
    """Number of parameters, not counting masked entries; shared parameters count once."""
    masks = {id(getattr(m, p)): mask for _, m, p, mask in masked_params(model)}
    total = 0
    for param in model.parameters():  # model.parameters() yields each shared tensor once
        mask = masks.get(id(param))
        total += int(mask.sum()) if mask is not None else param.numel()
    return total
