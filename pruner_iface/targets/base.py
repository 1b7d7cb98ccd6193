"""Target: what can be pruned, seen as units. A TargetLayer views one parameter as units."""
from __future__ import annotations

import dataclasses
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Sequence

import torch
import torch.nn.utils.parametrize  # noqa: F401  (is_parametrized)
from torch import nn

from ..errors import ConfigError
from ..accounting import Removal
from ..masks import get_mask
from ..registry import Registry, check, construct
from ..selection import DEFAULT_MODULE_TYPES, resolve_types, select_modules
from ..selection_ops import lowest_k

REDUCTIONS = ("sum", "mean", "max")


def reduce_units(grouped: torch.Tensor, how: str, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Reduce ``[units, unit_size]`` element scores to one score per unit."""
    if how not in REDUCTIONS:
        raise ConfigError(f"reduce: {how!r} is not one of {', '.join(REDUCTIONS)}")
    if grouped.shape[-1] == 1:
        return grouped[:, 0]
    if valid is not None:
        filler = float("-inf") if how == "max" else 0.0
        grouped = grouped.masked_fill(~valid, filler)
    if how == "max":
        return grouped.amax(-1)
    total = grouped.sum(-1)
    if how == "sum":
        return total
    count = grouped.shape[-1] if valid is None else valid.sum(-1).clamp_min(1)
    return total / count


def matrix_view(weight: torch.Tensor) -> torch.Tensor:
    """A Linear/ConvNd weight as ``[out, in_cols]``; conv weights permuted to ``[out, *k, in]`` first."""
    if weight.dim() <= 2:
        return weight.reshape(weight.shape[0], -1)
    perm = (0, *range(2, weight.dim()), 1)
    return weight.permute(*perm).reshape(weight.shape[0], -1)


def from_matrix(matrix: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Inverse of :func:`matrix_view`."""
    if len(shape) <= 2:
        return matrix.reshape(shape)
    permuted = (shape[0], *shape[2:], shape[1])
    inv = (0, len(shape) - 1, *range(1, len(shape) - 1))
    return matrix.reshape(permuted).permute(*inv).contiguous()


class TargetLayer(ABC):
    """A set of `num_units` units that one allocation decision covers (a layer's rows, blocks,
    weights, or a stream of coupled channels).

    Counts used by objectives: ``unit_weights`` (weight elements a unit removes: an int, or a
    per-unit tensor where units differ) and ``counts_weights`` (sparsity counts weights rather
    than units); params and FLOPs objectives use :meth:`removals`.
    """

    counts_weights = False
    structured = False
    name: str
    num_units: int
    unit_weights: int | torch.Tensor

    @property
    def max_units(self) -> int:
        """Most units that may be pruned: every layer keeps at least one unit."""
        return self.num_units - 1

    free_choice = True  # any set of `count` units is legal (see `choose`)
    masks_use_scores = False  # `masks` needs the members' element scores (kept until masking only then)

    def legal_count(self, count: int) -> int:
        """The unit count actually pruned for a requested `count` (e.g. rounded to channel multiples)."""
        return count

    def choose(self, scores: torch.Tensor, count: int) -> torch.Tensor:
        """Which `count` units to prune: the lowest-scoring ones, unless the layer constrains the
        set (then `free_choice` is False and allocators' own picks are replaced by this)."""
        return lowest_k(scores, count)

    @property
    def sparsity_total(self) -> int:
        return self.num_units

    def removed_weights(self, pruned: torch.Tensor) -> int:
        """Weight elements removed by the pruned units."""
        if isinstance(self.unit_weights, int):
            return self.unit_weights * int(torch.count_nonzero(pruned))
        return int(self.unit_weights.to(pruned.device)[pruned].sum())

    def sparsity_removed(self, pruned: torch.Tensor) -> int:
        """What the sparsity objective counts as removed: weights or units."""
        return self.removed_weights(pruned) if self.counts_weights else int(torch.count_nonzero(pruned))

    @property
    @abstractmethod
    def shape(self) -> tuple[int, ...]:
        """The shape shown in reports."""

    @abstractmethod
    def members(self) -> list:
        """What metrics score: objects with ``.name``, ``.param_name`` and ``.weight``."""

    @abstractmethod
    def unit_scores_from(self, member_scores: list[torch.Tensor], reduce: str, normalize: bool = True) -> torch.Tensor:
        """One score per unit from the element scores of every member (see :meth:`members`);
        `normalize`: whether members may be rescaled against each other first."""

    @abstractmethod
    def unit_sums(self, member_values: list[torch.Tensor]) -> torch.Tensor:
        """The plain sum over each unit's elements of member-shaped tensors (differentiable, so
        penalties over units such as group lasso can be back-propagated)."""

    @abstractmethod
    def current_pruned(self) -> torch.Tensor:
        """Units already removed by the masks in place."""

    @abstractmethod
    def masks(self, pruned: torch.Tensor, member_scores: list[torch.Tensor] | None = None) -> dict:
        """Keep-masks ``{(module, parameter name): bool tensor}`` for every parameter the pruned
        units touch; `member_scores` are the element scores of :meth:`members`."""

    @abstractmethod
    def removals(self, pruned: torch.Tensor) -> list[Removal]:
        """What the pruned units remove from each parameter (see :mod:`pruner_iface.accounting`)."""

    @abstractmethod
    def kept_and_total(self) -> tuple[int, int]:
        """What the report shows as kept / total."""


class TensorLayer(TargetLayer):
    """One parameter whose elements group into units (:meth:`group`)."""

    def __init__(self, name: str, module: nn.Module, param_name: str = "weight"):
        self.name = name
        self.module = module
        self.param_name = param_name

    @property
    def weight(self) -> torch.Tensor:
        return getattr(self.module, self.param_name)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.weight.shape)

    @property
    def sparsity_total(self) -> int:
        return int(self.weight.numel()) if self.counts_weights else self.num_units

    @abstractmethod
    def group(self, tensor: torch.Tensor) -> torch.Tensor:
        """Elements of a weight-shaped tensor as ``[num_units, unit_size]``."""

    @abstractmethod
    def ungroup(self, grouped: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`group`."""

    def unit_scores(self, element_scores: torch.Tensor, reduce: str) -> torch.Tensor:
        return reduce_units(self.group(element_scores), reduce)

    def members(self) -> list["TensorLayer"]:
        return [self]

    def unit_scores_from(self, member_scores, reduce, normalize=True):
        return self.unit_scores(member_scores[0], reduce)

    def unit_sums(self, member_values):
        return self.group(member_values[0]).sum(-1)

    def removals(self, pruned):
        return [Removal(self.module, self.param_name, None, self.removed_weights(pruned), self.weight.numel())]

    def kept_and_total(self):
        mask = self.current_mask()
        total = self.weight.numel()
        return (total if mask is None else int(mask.sum())), total

    def current_mask(self) -> torch.Tensor | None:
        return get_mask(self.module, self.param_name)

    def current_pruned(self):
        mask = self.current_mask()
        if mask is None:
            return torch.zeros(self.num_units, dtype=torch.bool, device=self.weight.device)
        return ~self.group(mask).any(-1)

    def masks(self, pruned, member_scores=None):
        keep = ~pruned.unsqueeze(-1).expand(-1, self.group(self.weight).shape[-1])
        return {(self.module, self.param_name): self.ungroup(keep)}


@dataclass
class Target(ABC):
    """Base of all targets: selects modules and turns each selected parameter into a TargetLayer.

    `module_types` are torch.nn class names (or classes); `overrides` maps a module-name regex
    (full match) to target options for the matching layers (e.g. another block shape).
    """

    module_types: Sequence[Any] = DEFAULT_MODULE_TYPES
    overrides: dict = field(default_factory=dict)

    structured = False
    supported_types: ClassVar[tuple[type, ...] | None] = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)

    def __post_init__(self) -> None:
        self._types = resolve_types(self.module_types)
        if self.supported_types is not None:
            for t in self._types:
                check(issubclass(t, self.supported_types), "module_types",
                      f"{t.__name__} is not supported by this target; allowed: "
                      + ", ".join(s.__name__ for s in self.supported_types))
        check(isinstance(self.overrides, dict), "overrides", "must map module-name regexes to option dicts")
        own = {f.name for f in dataclasses.fields(self)} - {"module_types", "overrides"}
        self._overrides = []
        for pattern, opts in self.overrides.items():
            check(isinstance(opts, dict), f"overrides.{pattern}", "must be a dict of target options")
            bad = [k for k in opts if k not in own]
            check(not bad, f"overrides.{pattern}", f"unknown option(s) {bad}; allowed: {sorted(own)}")
            try:
                self._overrides.append((re.compile(pattern), opts))
            except re.error as exc:
                raise ConfigError(f"overrides: {pattern!r} is not a valid regular expression ({exc})") from None

    def options_for(self, name: str) -> "Target":
        """This target with the per-layer overrides of module `name` applied."""
        opts: dict = {}
        for pattern, o in self._overrides:
            if pattern.fullmatch(name):
                opts.update(o)
        if not opts:
            return self
        base = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "overrides"}
        return construct(type(self), {**base, **opts}, f"target.overrides[{name}]")

    def report_notes(self, layers: list[TargetLayer]) -> dict:
        """Facts about this target's analysis for the report (e.g. the dependency graph's warnings)."""
        return {}

    def speed_up(self, model: nn.Module, layers: list[TargetLayer]) -> nn.Module:
        """Physically shrink what the layers pruned; targets whose masks shrink nothing refuse."""
        from ..errors import SpeedUpError

        raise SpeedUpError(
            f"target {getattr(self, 'registered_name', type(self).__name__)!r} is not structured: its masks "
            f"cannot shrink any tensor. speed_up applies to 'channel' and 'channel-local'; call "
            f"pi.remove_masks(model) to bake unstructured masks into the weights"
        )

    @abstractmethod
    def bind(self, model: nn.Module, include=None, exclude=None, example_inputs=None) -> list[TargetLayer]:
        """The TargetLayers of `model`; shape problems raise before anything changes."""


@dataclass
class TensorTarget(Target):
    """A target whose layers are single parameters of the selected modules."""

    def bind(self, model: nn.Module, include=None, exclude=None, example_inputs=None) -> list[TargetLayer]:
        """One TensorLayer per selected parameter; shape problems raise before anything changes.

        A weight tied between modules is one layer (bound through its first module), so it is
        scored, counted and masked once; its mask then applies wherever the tensor is used.
        """
        layers, seen = [], set()
        for name, module in select_modules(model, self._types, include, exclude):
            weight = getattr(module, "weight", None)
            if not isinstance(weight, torch.Tensor):
                raise ConfigError(f"module {name!r} ({type(module).__name__}) has no weight tensor to prune")
            if not isinstance(weight, nn.Parameter) or nn.utils.parametrize.is_parametrized(module, "weight"):
                raise ConfigError(
                    f"module {name!r}: its weight is computed (weight_norm, a parametrization or "
                    f"torch.nn.utils.prune), so a mask on it would not hold; remove that first or exclude the module"
                )
            if id(weight) in seen:
                continue
            seen.add(id(weight))
            layers.append(self.options_for(name).make_layer(name, module))
        return layers

    @abstractmethod
    def make_layer(self, name: str, module: nn.Module) -> TensorLayer:
        """The layer of one selected module (raises ConfigError if its shape does not fit)."""


TARGETS: Registry[Target] = Registry("target", Target)
register_target = TARGETS.register
