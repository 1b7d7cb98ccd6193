"""Turn 2:4-pruned Linear weights into torch's semi-structured sparse tensors
(``torch.sparse.to_sparse_semi_structured``), which sparse tensor cores multiply faster.

torch supports this on CUDA only, compute capability ≥ 8.0, for 2-D weights whose shape is a
multiple of a per-dtype minimum; every chosen module is checked before any is converted.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn

from .errors import InputError
from .masks import get_mask, remove_mask

MIN_SHAPE = {torch.float16: (32, 64), torch.bfloat16: (32, 64), torch.int8: (16, 128), torch.float32: (32, 32)}


def is_two_four(weight: torch.Tensor) -> bool:
    """Whether every 4 consecutive inputs of every row hold at most 2 non-zeros."""
    if weight.dim() != 2 or weight.shape[1] % 4:
        return False
    return bool(((weight != 0).reshape(weight.shape[0], -1, 4).sum(-1) <= 2).all())


def _problem(name: str, module: nn.Module) -> Optional[str]:
    weight = module.weight
    if not is_two_four(weight.detach()):
        return f"{name!r}: its weight is not 2:4 sparse along the inputs (prune it with the n:m target, n=2 m=4)"
    if not weight.is_cuda:
        return f"{name!r}: its weight is on {weight.device}; semi-structured sparsity runs on CUDA only"
    if torch.cuda.get_device_capability(weight.device) < (8, 0):
        return f"{name!r}: GPU compute capability {torch.cuda.get_device_capability(weight.device)} < (8, 0)"
    if weight.dtype not in MIN_SHAPE:
        return f"{name!r}: dtype {weight.dtype} is not one of {', '.join(str(d) for d in MIN_SHAPE)}"
    rows, cols = MIN_SHAPE[weight.dtype]
    if weight.shape[0] % rows or weight.shape[1] % cols:
        return f"{name!r}: shape {tuple(weight.shape)} is not a multiple of ({rows}, {cols}) for {weight.dtype}"
    return None


def to_semi_structured(model: nn.Module, names: Optional[Sequence[str]] = None) -> list[str]:
    """Convert the 2:4-pruned Linear layers of `model` in place (`names`: module names to convert;
    default: every Linear whose mask is 2:4). Masks are baked first; the converted weights no
    longer train. Returns the converted names; raises, changing nothing, if one cannot be."""
    modules = dict(model.named_modules())
    if names is None:
        chosen = [n for n, m in modules.items() if type(m) is nn.Linear and get_mask(m, "weight") is not None
                  and is_two_four(m.weight.detach())]
        if not chosen:
            raise InputError("to_semi_structured: no Linear layer of the model carries a 2:4 mask")
    else:
        unknown = [n for n in names if not isinstance(modules.get(n), nn.Linear)]
        if unknown:
            raise InputError(f"to_semi_structured: {unknown} are not Linear modules of the model")
        chosen = list(names)
    problems = [p for p in (_problem(n, modules[n]) for n in chosen) if p]
    if problems:
        raise InputError("to_semi_structured cannot convert " + "; ".join(problems) + ". Nothing was converted")
    for name in chosen:
        module = modules[name]
        if get_mask(module, "weight") is not None:
            remove_mask(module, "weight")
        sparse = torch.sparse.to_sparse_semi_structured(module.weight.detach().contiguous())
        module.weight = nn.Parameter(sparse, requires_grad=False)
    return chosen
