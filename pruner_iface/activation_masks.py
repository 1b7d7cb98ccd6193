"""Activation sparsity: masks on modules' output activations, attached by module name (as
jax_pruning's prune_act_unstruct / prune_act_struct apply them inside a model).

Unlike weight masks they are recomputed at every forward from the activation itself:
``{"density": d}`` keeps, in each sample, the ⌈d·n⌉ entries of largest |a| (each sample on its
own, so a sample's output does not depend on the rest of the batch); ``{"n": n, "m": m}`` keeps
the n largest |a| of every m consecutive entries along `dim` (default the last; 1 for a conv's
channels). Gradients flow through the kept entries only. All specs are checked before any hook
is attached, so a bad one leaves the model as it was.
"""
from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from .errors import ConfigError, InputError


@dataclass(frozen=True)
class ActivationRule:
    """How one module's output is masked: a density, or N:M along `dim`."""

    density: Optional[float] = None
    n: Optional[int] = None
    m: Optional[int] = None
    dim: int = -1

    @classmethod
    def parse(cls, name: str, spec) -> "ActivationRule":
        where = f"activation mask {name!r}"
        if not isinstance(spec, dict):
            raise ConfigError(f"{where}: expected {{'density': d}} or {{'n': n, 'm': m[, 'dim': d]}}; got {spec!r}")
        bad = set(spec) - {"density", "n", "m", "dim"}
        if bad:
            raise ConfigError(f"{where}: unknown key(s) {sorted(bad)}; allowed: density, or n, m and dim")
        if ("density" in spec) == ("n" in spec or "m" in spec):
            raise ConfigError(f"{where}: give either density or n and m")
        dim = spec.get("dim", -1)
        if not isinstance(dim, int) or isinstance(dim, bool):
            raise ConfigError(f"{where}.dim: must be an integer; got {dim!r}")
        if "density" in spec:
            d = spec["density"]
            if not (isinstance(d, (int, float)) and not isinstance(d, bool) and 0.0 < d <= 1.0):
                raise ConfigError(f"{where}.density: the fraction kept must be in (0, 1]; got {d!r}")
            return cls(density=float(d), dim=dim)
        n, m = spec.get("n"), spec.get("m")
        if not (isinstance(n, int) and isinstance(m, int) and 1 <= n < m):
            raise ConfigError(f"{where}: N:M keeps n of every m with 1 <= n < m; got n={n!r}, m={m!r}")
        return cls(n=n, m=m, dim=dim)

    def keep(self, out: torch.Tensor, name: str) -> torch.Tensor:
        """The bool keep-mask of one output tensor."""
        mag = out.detach().abs()
        if self.density is not None:
            flat = mag.reshape(mag.shape[0], -1) if mag.dim() > 1 else mag.reshape(1, -1)
            k = math.ceil(self.density * flat.shape[1])
            keep = torch.zeros_like(flat, dtype=torch.bool)
            keep.scatter_(1, flat.topk(k, dim=1).indices, True)
            return keep.reshape(mag.shape)
        moved = mag.movedim(self.dim, -1)
        if moved.shape[-1] % self.m:
            raise InputError(f"activation mask {name!r}: N:M groups of {self.m} do not divide its output's dim "
                             f"{self.dim} of size {moved.shape[-1]}")
        groups = moved.reshape(*moved.shape[:-1], -1, self.m)
        keep = torch.zeros_like(groups, dtype=torch.bool)
        keep.scatter_(-1, groups.topk(self.n, dim=-1).indices, True)
        return keep.reshape(moved.shape).movedim(-1, self.dim)


class ActivationMasks:
    """Handles of the attached activation masks; :meth:`remove` (or leaving a ``with`` block)
    detaches them."""

    def __init__(self, model: nn.Module, spec: dict):
        if not isinstance(spec, dict) or not spec:
            raise ConfigError(f"activation masks: expected a non-empty {{module name: rule}} dict; got {spec!r}")
        modules = dict(model.named_modules())
        rules = {}
        for name, rule in spec.items():
            if name not in modules or not name:
                close = difflib.get_close_matches(str(name), [n for n in modules if n], n=3)
                hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
                raise ConfigError(f"activation masks: the model has no submodule {name!r}{hint}")
            rules[name] = ActivationRule.parse(name, rule)
        self.rules = rules
        self._handles = [modules[name].register_forward_hook(self._hook(name, rule)) for name, rule in rules.items()]

    @staticmethod
    def _hook(name: str, rule: ActivationRule):
        def hook(module, args, out):
            if not isinstance(out, torch.Tensor):
                raise InputError(f"activation mask {name!r}: {type(module).__name__} returns "
                                 f"{type(out).__name__}, not a tensor; attach it to a module whose output is one")
            return out * rule.keep(out, name)

        return hook

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def __enter__(self) -> "ActivationMasks":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def mask_activations(model: nn.Module, spec: dict) -> ActivationMasks:
    """Attach activation masks: ``{"fc1": {"density": 0.5}, "conv2": {"n": 2, "m": 4, "dim": 1}}``."""
    return ActivationMasks(model, spec)
