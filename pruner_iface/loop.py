"""The inner loop of one pruning step: score units, then search the allocator's strength until
the step objective is met. Nothing touches the model here; the Pruner applies the result."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import torch

from .allocators.base import Allocator
from .errors import ObjectiveNotReachedError, PrunerError
from .metrics.base import Metric, UnitMetric
from .objectives.base import Objective
from .targets.base import TargetLayer

MAX_TRIES = 60
MAX_CHECKS = 6  # measured candidates per step for objectives whose estimates are predictions


@dataclass
class Try:
    level: Optional[float]  # allocator strength; None for a measurement of a candidate
    value: float            # the objective's estimate (or, for a measurement, the measured value)
    kind: str = "estimate"  # "estimate" | "measured"
    aim: Optional[float] = None  # the estimate the search aimed at when it made this candidate
    estimate: Optional[float] = None  # for a measurement: what the objective predicted
    detail: Optional[dict] = None  # for a measurement: e.g. medians and spreads of timed runs

    def as_dict(self) -> dict:
        return {k: v for k, v in vars(self).items() if v is not None}


@dataclass
class StepResult:
    pruned: list[torch.Tensor]
    value: float
    tries: list[Try] = field(default_factory=list)
    predicted: Optional[float] = None  # verified objectives: the estimate of the kept candidate


def score_units(layers: list[TargetLayer], metric: Metric) -> tuple[list[torch.Tensor], list[list[torch.Tensor]]]:
    """(unit scores, member element scores) per layer; units already pruned score -inf so they
    stay pruned."""
    unit_scores, element_scores = [], []
    for layer in layers:
        member_scores = []
        if isinstance(metric, UnitMetric):
            units = metric.unit_scores(layer).float()
            if units.shape != (layer.num_units,):
                raise PrunerError(f"metric {metric.registered_name!r} returned {tuple(units.shape)} scores for "
                                  f"{layer.name!r}, which has {layer.num_units} units")
            unit_scores.append(units.masked_fill(layer.current_pruned(), float("-inf")))
            element_scores.append(member_scores)
            continue
        for member in layer.members():
            elem = metric.element_scores(member)
            if elem.shape != member.weight.shape:
                raise PrunerError(
                    f"metric {metric.registered_name!r} returned scores of shape {tuple(elem.shape)} for module "
                    f"{member.name!r} whose {member.param_name} is {tuple(member.weight.shape)}"
                )
            member_scores.append(elem.float())
        units = layer.unit_scores_from(member_scores, metric.reduce, normalize=not metric.additive).float()
        if torch.isnan(units).any():
            raise PrunerError(
                f"metric {metric.registered_name!r} gave NaN scores for {layer.name!r} "
                f"(NaN or inf weights or gradients?)"
            )
        already = layer.current_pruned()
        if already.any():
            units = units.masked_fill(already, float("-inf"))
        unit_scores.append(units)
        element_scores.append(member_scores if layer.masks_use_scores else [])  # full-size copies: keep few
    return unit_scores, element_scores


def search(
    layers: list[TargetLayer],
    unit_scores: list[torch.Tensor],
    allocator: Allocator,
    objective: Objective,
    target: float,
) -> StepResult:
    """The smallest allocator strength whose pruned units meet `target`, searched on [0, 1].

    Every objective here is monotone in the strength. The search interpolates and bisects, and
    stops once the value overshoots the target by at most ``objective.precision`` (in amount
    pruned) or the strength is pinned down; each distinct allocation is measured once.
    Raises ObjectiveNotReachedError, naming the best reachable value, if even full strength fails.
    """
    already_sets = [layer.current_pruned() for layer in layers]
    current = objective.estimate(layers, already_sets)
    result = StepResult(already_sets, current, [Try(0.0, current)])
    if objective.achieved(current, target):
        return result
    already = [int(s.sum()) for s in already_sets]
    seen: dict[tuple[int, ...], tuple[list[torch.Tensor], float]] = {}

    def attempt(level: float) -> tuple[list[torch.Tensor], float]:
        proposal = allocator.allocate(layers, unit_scores, level, already)
        key = tuple(proposal.counts)
        if key not in seen:
            pruned = proposal.pruned_sets(unit_scores)
            seen[key] = (pruned, objective.estimate(layers, pruned))
            result.tries.append(Try(level, seen[key][1]))
        return seen[key]

    amount, goal = objective.to_amount, objective.to_amount(target)
    lo, lo_amount = 0.0, amount(current)
    hi = min(max(goal, 1e-6), 1.0)  # for sparsity the allocator's level is the objective itself
    pruned, value = attempt(hi)
    if not objective.achieved(value, target):
        lo, lo_amount, hi = hi, amount(value), 1.0
        pruned, value = attempt(1.0)
        if not objective.achieved(value, target):
            name = objective.registered_name
            raise ObjectiveNotReachedError(
                f"{name} objective {target:.4g} cannot be reached: the most the {allocator.registered_name!r} "
                f"allocator can prune (within max_ratio, overrides and at least one unit kept per layer) "
                f"gives {name} {value:.4g}; the model was left as it was before this step"
            )
    best, hi_amount = (pruned, value), amount(value)
    for i in range(MAX_TRIES):
        if hi_amount - goal <= objective.precision or hi - lo <= 1e-7:
            break
        mid = (lo + hi) / 2
        if i % 2 == 0 and hi_amount > lo_amount:  # interpolate; every other try bisects to guarantee progress
            mid = lo + (hi - lo) * (goal - lo_amount) / (hi_amount - lo_amount)
            mid = min(max(mid, lo + 0.01 * (hi - lo)), hi - 0.01 * (hi - lo))
        pruned, value = attempt(mid)
        if objective.achieved(value, target):
            hi, hi_amount, best = mid, amount(value), (pruned, value)
        else:
            lo, lo_amount = mid, amount(value)
    result.pruned, result.value = best
    return result


def _most_reachable(layers, unit_scores, allocator, objective, unreachable, last, tries=8):
    """The candidate closest to an aim the estimate cannot reach: bisect between it and the last
    candidate's estimate (reachable) for the lowest aim that still is. None if nothing below the
    last candidate is."""
    lo, hi, best = unreachable, last.value, None
    for _ in range(tries):
        mid = (lo + hi) / 2
        try:
            best = (mid, search(layers, unit_scores, allocator, objective, mid))
            hi = mid
        except ObjectiveNotReachedError:
            lo = mid
    return best if best is not None and best[1].value < last.value else None


def meet(
    layers: list[TargetLayer],
    unit_scores: list[torch.Tensor],
    allocator: Allocator,
    objective: Objective,
    target: float,
    check: Optional[Callable[[list[torch.Tensor]], float]] = None,
) -> StepResult:
    """:func:`search`, then, for objectives whose estimates are predictions (``objective.verify``),
    measure each candidate with `check` and correct the aim until the measurement meets `target`
    within ``objective.tolerance`` (both ways: a candidate far under budget is loosened).

    The aim moves multiplicatively (``aim · target / measured``) until two measured candidates
    bracket the target, then by interpolating between the bracketing pair (regula falsi on
    estimate → measurement, which is monotone up to noise); an aim below what the estimate can
    reach falls back to the most it can (an estimate that is too optimistic must not end the
    search while more pruning is possible). Of the candidates that meet the
    target, the one closest to it wins. Raises ObjectiveNotReachedError with the closest measured
    value if none does within ``objective.checks`` measurements.
    """
    if objective.exact:  # the allocator meets it in one exact allocation
        pruned = allocator.allocate_exact(layers, unit_scores, objective)
        value = objective.estimate(layers, pruned)
        return StepResult(pruned, value, [Try(None, value, "exact")])
    result = search(layers, unit_scores, allocator, objective, target)
    if check is None or not objective.verify:
        return result
    tries = list(result.tries)
    aim, best, closest = target, None, None
    below: Optional[tuple[float, float]] = None  # (estimate, measured) with measured <= target, largest estimate
    above: Optional[tuple[float, float]] = None  # measured > target, smallest estimate
    for _ in range(getattr(objective, "checks", MAX_CHECKS)):
        measured = check(result.pruned)
        tries.append(Try(None, measured, "measured", aim, result.value, dict(getattr(objective, "last_detail", {}))))
        if closest is None or abs(measured - target) < abs(closest - target):
            closest = measured
        if objective.within_tolerance(measured, target):
            if best is None or abs(measured - target) < abs(best[1] - target):
                best = (result.pruned, measured, result.value)
            if abs(measured - target) <= objective.tolerance * target:  # not over-pruned beyond it either
                break
        point = (result.value, measured)
        if measured <= target:
            below = point if below is None or point[0] > below[0] else below
        else:
            above = point if above is None or point[0] < above[0] else above
        if below is not None and above is not None and above[0] > below[0] and above[1] > below[1]:
            aim = below[0] + (above[0] - below[0]) * (target - below[1]) / (above[1] - below[1])
        else:
            aim = aim * target / max(measured, 1e-9)
        aim = min(1.0, max(1e-4, aim))
        if aim == 1.0 and measured < target:
            break
        try:
            result = search(layers, unit_scores, allocator, objective, aim)
        except ObjectiveNotReachedError:
            floor = _most_reachable(layers, unit_scores, allocator, objective, aim, result)
            if floor is None:
                break
            aim, result = floor
        tries += result.tries
    if best is None:
        name = objective.registered_name
        raise ObjectiveNotReachedError(
            f"{name} objective {target:.4g} was not met by any measured candidate (closest: {closest:.4g} after "
            f"{sum(t.kind == 'measured' for t in tries)} measurements, tolerance {objective.tolerance:.0%}); "
            f"the model was left as it was before this step"
        )
    return StepResult(best[0], best[1], tries, predicted=best[2])
