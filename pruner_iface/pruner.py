"""Pruner: the public entry point. Binds the five parts to a model and runs the nested loop.

Outer loop: the scheduler's plan of (step, objective value). Inner loop (``loop.search``): the
allocator's strength is raised until the step objective is met. Masks change only once a step's
allocation meets its objective, so a failing step leaves the model as it was before it.
"""
from __future__ import annotations

import copy
import time
import warnings
from typing import Any, Callable, Iterable, Mapping, Optional

import torch
from torch import nn

from . import loop
from .allocators.base import AllocationContext
from .candidates import masked_copy, shrunk_copy
from .config import PrunerConfig, build_parts
from .counting import count_flops, count_params
from .errors import ConfigError, InputError, MissingDataError, ObjectiveNotReachedError, PrunerError
from .inputs import check_forward, normalize_inputs
from .masks import reapply_masks, set_mask
from .metrics.base import UnitMetric
from .report import LayerRow, Report, StepRow
from .training.base import MaskChange, TrainingContext
from .training.hook_check import WHEN, HookCheck


def _spec(part: Any) -> Any:
    if isinstance(part, (str, Mapping)):
        return copy.deepcopy(part)
    return {"name": getattr(part, "registered_name", type(part).__name__), "instance": repr(part)}


class Pruner:
    """Prune `model` in place with a target, metric, allocator, scheduler and objective.

    Each part is a registered name, a dict ``{"name": ..., **options}`` or an instance.
    `example_inputs` is a tuple of positional tensors or a dict of keyword inputs; `include` /
    `exclude` are module-name regexes (full match). `training` lists training-time mechanisms
    (names or dicts: group_lasso, slim, pattern_lock, progressive, rewind) that act through the
    training-loop hooks, or that update weights from calibration data in ``run`` (sparsegpt,
    bias_compensation).
    """

    def __init__(
        self,
        model: nn.Module,
        example_inputs: Any,
        *,
        target: Any,
        metric: Any,
        objective: Any,
        allocator: Any = "uniform",
        scheduler: Any = "one-pass",
        include: Optional[list[str]] = None,
        exclude: Optional[list[str]] = None,
        training: Optional[list] = None,
    ):
        if not isinstance(model, nn.Module):
            raise InputError(f"model must be a torch.nn.Module; got {type(model).__name__}")
        self.model = model
        self.example_inputs = example_inputs
        self._args, self._kwargs = normalize_inputs(example_inputs)
        parts = build_parts(target, metric, allocator, scheduler, objective, training)
        self.target, self.metric, self.training = parts.target, parts.metric, parts.training
        self.allocator, self.scheduler, self.objective = parts.allocator, parts.scheduler, parts.objective
        if self.objective.needs_speed_up and not self.target.structured:
            raise ConfigError(
                f"objective {self.objective.registered_name!r} is measured on the physically shrunk model, but target "
                f"{self.target.registered_name!r} shrinks nothing; use a structured target (channel, head, mlp, "
                f"hidden, channel-local) or a flops/params/sparsity objective")
        if self.objective.exact and not self.allocator.exact:
            raise ConfigError(
                f"objective {self.objective.registered_name!r} prunes an exact amount, which allocator "
                f"{self.allocator.registered_name!r} cannot; use 'uniform' (in each layer) or 'global' (over all layers)")
        self.layers = self.target.bind(model, include, exclude, example_inputs)
        check_forward(model, self._args, self._kwargs)
        self.objective.bind(model, example_inputs, self.layers)
        self.plan = self.scheduler.plan(self.objective)
        calibrating = [m.registered_name for m in self.training if m.requires_data]
        if len(calibrating) > 1:
            raise ConfigError(f"training lists {len(calibrating)} calibration mechanisms ({', '.join(calibrating)}); "
                              f"each makes up for a step's loss from the weights as they were before it, so together "
                              f"they would correct the same loss twice; keep one")
        for mechanism in self.training:
            mechanism.bind(TrainingContext(model, self.layers, self.scheduler))
        if self.objective.exact and len(self.plan) != 1:
            raise ConfigError(
                f"objective {self.objective.registered_name!r} prunes a share of what is left in one step, but scheduler "
                f"{self.scheduler.registered_name!r} plans {len(self.plan)} steps; use 'one-pass' (and prune again "
                f"with a new Pruner, as with torch.nn.utils.prune)")
        self._parts_spec = {
            "target": _spec(target), "metric": _spec(metric), "allocator": _spec(allocator),
            "scheduler": _spec(scheduler), "objective": _spec(objective),
            "include": include, "exclude": exclude,
        }
        if self.training:
            self._parts_spec["training"] = [_spec(m) for m in training]
        self._dense_params = sum(p.numel() for p in model.parameters())
        self._dense_flops = self._flops()
        self.report = self._new_report()
        self._step = 0
        self._sped_up = False
        self._done_steps: set[int] = set()
        self._evaluate: Optional[Callable[[nn.Module], float]] = None
        self._hooks = HookCheck(model)
        self._counter_used = False  # on_step_begin() without a step: the schedule follows our counter
        self._resumed = False  # load_state() ran: the next start continues instead of starting over

    # ------------------------------------------------------------------ construction helpers
    @classmethod
    def from_config(cls, config: Any, model: nn.Module, example_inputs: Any) -> "Pruner":
        """Build from a PrunerConfig, a dict or a YAML/JSON file path."""
        cfg = PrunerConfig.load(config)
        return cls(model, example_inputs, target=cfg.target, metric=cfg.metric, allocator=cfg.allocator,
                   scheduler=cfg.scheduler, objective=cfg.objective, include=cfg.include, exclude=cfg.exclude,
                   training=cfg.training)

    @classmethod
    def from_preset(cls, name: str, model: nn.Module, example_inputs: Any, **overrides: Any) -> "Pruner":
        """Build from a named preset; `overrides` replace a part (name/instance) or update its dict."""
        from .presets import resolve

        return cls.from_config(resolve(name, **overrides), model, example_inputs)

    # ------------------------------------------------------------------ one-call loop
    def run(
        self,
        *,
        data: Optional[Iterable] = None,
        loss_fn: Optional[Callable[[nn.Module, Any], torch.Tensor]] = None,
        fine_tune: Optional[Callable[[nn.Module, int], Any]] = None,
        evaluate: Optional[Callable[[nn.Module], float]] = None,
        progress: bool = False,
        run_dir: Optional[str] = None,
    ) -> Report:
        """Run every step of the schedule: score, allocate to the step objective, mask, fine-tune.

        `data` yields batches and `loss_fn(model, batch)` returns a scalar loss, for metrics that
        need gradients; `fine_tune(model, step)` runs after each pruning step; `evaluate(model)`
        returns a float recorded before pruning and after each step. With `run_dir` the state is
        saved there after every step; after :meth:`load_state` a run continues where it stopped.
        """
        self._check_usable()
        for name, fn in (("loss_fn", loss_fn), ("fine_tune", fine_tune), ("evaluate", evaluate)):
            if fn is not None and not callable(fn):
                raise InputError(f"{name} must be callable; got {type(fn).__name__}")
        readers = ([f"metric {self.metric.registered_name!r}"] if self.metric.requires_data else []) + [
            f"training mechanism {m.registered_name!r}" for m in self.training if m.requires_data]
        if readers and (data is None or loss_fn is None):
            raise MissingDataError(
                f"{' and '.join(readers)} {'learns' if len(readers) == 1 else 'learn'} from data (gradients or "
                f"activations): pass data=<iterable of batches> and "
                f"loss_fn=<callable(model, batch) -> scalar loss> to run()"
            )
        self._use_evaluate(evaluate)
        self._check_run_training(fine_tune)
        self._check_reachable()
        if evaluate is not None and self.report.dense_evaluation is None:
            self.report.dense_evaluation = float(evaluate(self.model))
        if not self._resumed:
            self.metric.reset()
        steps = [(s, v) for s, v in self.plan if s not in self._done_steps]
        from tqdm.auto import tqdm

        self._begin_training()
        try:
            for step, value in tqdm(steps, desc="pruning", disable=not progress or len(steps) < 2):
                if self._already_met(step, value):
                    continue
                if self.metric.requires_data:
                    self.metric.collect(self.model, self._scored(), data, loss_fn)
                for mechanism in self.training:
                    if mechanism.requires_data:
                        mechanism.collect(self.model, data, loss_fn)
                self._prune_step(step, value)
                if fine_tune is not None:
                    fine_tune(self.model, step)
                    reapply_masks(self.model)
                    self._hooks.check(self._needs(), f"the end of fine_tune at step {step}")
                if evaluate is not None:
                    self.report.steps[-1].evaluation = float(evaluate(self.model))
                if run_dir is not None:
                    self.save_state(run_dir)
            for mechanism in self.training:
                mechanism.on_train_end()
        finally:
            self._hooks.stop()
        return self._finish()

    # ------------------------------------------------------------------ training-loop hooks
    def on_train_begin(self, evaluate: Optional[Callable[[nn.Module], float]] = None) -> None:
        """Start a training-loop run: step-driven pruning follows the scheduler's plan.
        `evaluate(model)` is needed by allocators that search (sensitivity, annealing)."""
        self._check_usable()
        readers = [m.registered_name for m in self.training if m.requires_data]
        if readers:
            raise ConfigError(
                f"training mechanism(s) {readers} update weights from calibration data, which the training-loop "
                f"hooks do not pass: prune with pruner.run(data=..., loss_fn=...) instead")
        self._use_evaluate(evaluate)
        self._check_reachable()
        if not self._resumed:
            self._step = 0
            self._counter_used = False
            self.metric.reset()
        self._begin_training()

    def on_step_begin(self, step: Optional[int] = None) -> None:
        """Prune if `step` (default: the pruner's own counter) is a step of the plan."""
        self._check_usable()
        self._check_hooks("on_step_begin")
        if step is not None:
            self._step = int(step)
        else:
            self._counter_used = True
        for mechanism in self.training:
            mechanism.on_step_begin(self._step)
        for planned, value in self.plan:
            if planned == self._step and not self._already_met(planned, value):
                self._prune_step(planned, value)

    def on_before_optimizer_step(self) -> None:
        """Call after backward(): metrics that need gradients read them here and penalties
        (group_lasso, slim) add their gradients."""
        self._hooks.called("on_before_optimizer_step")
        self._check_hooks("on_before_optimizer_step")
        if self.metric.requires_data:
            self.metric.observe(self._scored())
        for mechanism in self.training:
            mechanism.before_optimizer_step()

    def on_after_optimizer_step(self) -> None:
        """Re-apply masks and advance the step counter."""
        self._hooks.called("on_after_optimizer_step")
        self._check_hooks("on_after_optimizer_step")
        reapply_masks(self.model)
        for mechanism in self.training:
            mechanism.after_optimizer_step()
        self._step += 1

    def on_train_end(self) -> Report:
        """Finish the run; warns about planned steps that were never reached and raises if a
        hook that a mechanism or the schedule needs was skipped."""
        self._check_hooks("on_train_end")
        self._hooks.stop()
        for mechanism in self.training:
            mechanism.on_train_end()
        missed = [s for s, _ in self.plan if s not in self._done_steps]
        if missed:
            warnings.warn(
                f"training ended at step {self._step} before pruning steps {missed} of the schedule; "
                f"the objective {self.objective.target} was not reached"
            )
            self.report.extra["missed_steps"] = missed
        return self._finish()

    # ------------------------------------------------------------------ speed-up
    def speed_up(self) -> nn.Module:
        """Physically shrink structured-pruned modules in place and return the model."""
        self._check_usable()
        self.target.speed_up(self.model, self.layers)
        self._sped_up = True
        self.report.extra.update(self.target.report_notes(self.layers))
        self.report.params = count_params(self.model)
        self.report.flops = self._flops()
        return self.model

    # ------------------------------------------------------------------ training mechanisms
    def _begin_training(self) -> None:
        self._hooks.start()
        if not self._resumed:  # a resumed run keeps the mechanisms' loaded state
            for mechanism in self.training:
                mechanism.on_train_begin()
        self._resumed = False

    # ------------------------------------------------------------------ resume
    def save_state(self, run_dir: str) -> str:
        """Save the run state (model weights and masks, step, report, the parts' accumulators)
        to ``run_dir``; in a training loop, call it when you checkpoint your own loop."""
        from .checkpoint import save_state

        return save_state(self, run_dir)

    def load_state(self, run_dir: str) -> None:
        """Restore a saved run state into this pruner (built with the same parts) and its model
        (a fresh copy of the original); the next ``run`` or ``on_train_begin`` continues it."""
        from .checkpoint import load_state

        self._check_usable()
        load_state(self, run_dir)
        self._resumed = True

    def _needs(self) -> dict[str, list[str]]:
        """Which per-optimizer-step hooks are needed, and by whom."""
        needs: dict[str, list[str]] = {hook: [] for hook in WHEN}
        for mechanism in self.training:
            for hook in mechanism.hooks:
                needs[hook].append(f"training mechanism {mechanism.registered_name!r}")
        if self._counter_used and len(self.plan) > 1:
            needs["on_after_optimizer_step"].append("the schedule (its step counter advances there)")
        return needs

    def _check_hooks(self, where: str) -> None:
        if not self._hooks.running:
            if self.training:
                names = ", ".join(repr(m.registered_name) for m in self.training)
                raise PrunerError(f"{where}() was called before on_train_begin(): training mechanism(s) {names} "
                                  f"start there; call pruner.on_train_begin() before the training loop")
            self._hooks.start()  # no mechanism: watch the optimizer from the first hook on
        self._hooks.check(self._needs(), f"{where}()" + (f" of step {self._step}" if where != "on_train_end" else ""))

    def _check_run_training(self, fine_tune) -> None:
        """run() drives pruning steps itself; mechanisms acting per optimizer step need the
        user's fine-tune loop to call the hooks, and staged masks need the training-loop hooks."""
        for mechanism in self.training:
            if mechanism.stages_masks:
                raise ConfigError(
                    f"training mechanism {mechanism.registered_name!r} spreads each pruning step over later optimizer "
                    f"steps, which run() does not have: drive the pruner with the training-loop hooks "
                    f"(on_train_begin, on_step_begin, on_before_optimizer_step, on_after_optimizer_step, on_train_end)")
            if mechanism.hooks and fine_tune is None:
                raise ConfigError(
                    f"training mechanism {mechanism.registered_name!r} acts at every optimizer step through "
                    f"{', '.join(h + '()' for h in mechanism.hooks)}: pass fine_tune=<callable(model, step)> whose "
                    f"training loop calls them")

    def _prune_step(self, step: int, value: float) -> None:
        self._prune_to(step, value)
        self.metric.after_prune()
        for mechanism in self.training:
            mechanism.after_prune(step)

    # ------------------------------------------------------------------ internals
    def _members(self) -> list:
        return [member for layer in self.layers for member in layer.members()]

    def _scored(self) -> list:
        """What the metric learns from: whole layers for unit metrics, member tensors otherwise."""
        return self.layers if isinstance(self.metric, UnitMetric) else self._members()

    def _use_evaluate(self, evaluate) -> None:
        if evaluate is not None and not callable(evaluate):
            raise InputError(f"evaluate must be callable; got {type(evaluate).__name__}")
        if self.allocator.needs_evaluate and evaluate is None:
            raise MissingDataError(
                f"allocator {self.allocator.registered_name!r} compares candidate allocations with evaluate(): pass "
                f"evaluate=<callable(model) -> float, higher is better>")
        self._evaluate = evaluate

    def _evaluate_candidate(self, pruned: list[torch.Tensor], element_scores=None) -> float:
        """evaluate() of a masked copy with exactly these units pruned (the model is untouched)."""
        candidate, _ = masked_copy(self.model, self.layers, pruned, element_scores)
        return float(self._evaluate(candidate))

    def _measure_candidate(self, pruned: list[torch.Tensor]) -> float:
        """The objective's true value for these pruned units, on a copy (shrunk where it must be)."""
        if self.objective.needs_speed_up:
            candidate = shrunk_copy(self.model, self.target, self.layers, pruned)
        else:
            candidate, _ = masked_copy(self.model, self.layers, pruned)
        return self.objective.measure(candidate)

    def _check_usable(self) -> None:
        if self._sped_up:
            raise PrunerError("this Pruner's model was already sped up; create a new Pruner to prune it further")

    def _flops(self) -> Optional[int]:
        try:
            return count_flops(self.model, self.example_inputs)
        except Exception as exc:  # FLOPs are informative here; the flops objective raises on its own
            warnings.warn(f"FLOPs could not be counted ({type(exc).__name__}: {exc})")
            return None

    def _already_met(self, step: int, value: float) -> bool:
        """Whether a planned step has nothing to do (done before, or its value is already met,
        e.g. the first step of a curve that starts at the dense value)."""
        if step in self._done_steps:
            return True
        if self.objective.exact:  # an amount of what is left: never met in advance
            return False
        current = [layer.current_pruned() for layer in self.layers]
        if self.objective.achieved(self.objective.estimate(self.layers, current), value):
            self._done_steps.add(step)
            return True
        return False

    def _check_reachable(self) -> None:
        """Fail before the first step if the final objective is out of reach of the allocator's
        bounds, rather than after earlier steps have pruned and fine-tuned."""
        if self.objective.exact:
            return  # the exact allocation checks its own counts before anything is masked
        current = [layer.current_pruned() for layer in self.layers]
        scores = [-c.float() for c in current]  # units already pruned are chosen first
        _, highs = self.allocator.bounds(self.layers, [int(c.sum()) for c in current])
        most = [layer.choose(s, layer.legal_count(h)) for layer, s, h in zip(self.layers, scores, highs)]
        value = self.objective.estimate(self.layers, most)
        if not self.objective.achieved(value, self.objective.target):
            name = self.objective.registered_name
            raise ObjectiveNotReachedError(
                f"{name} objective {self.objective.target:.4g} cannot be reached: the most the "
                f"{self.allocator.registered_name!r} allocator can prune (within max_ratio, overrides and at "
                f"least one unit kept per layer) gives {name} {value:.4g}; nothing was pruned"
            )

    def _prune_to(self, step: int, value: float) -> bool:
        """One pruning step; returns whether masks changed. Raises before touching the model."""
        started = time.perf_counter()
        unit_scores, element_scores = loop.score_units(self.layers, self.metric)
        already = [int(layer.current_pruned().sum()) for layer in self.layers]
        kept_scores = element_scores if any(element_scores) else None
        evaluate = None if self._evaluate is None else (lambda pruned: self._evaluate_candidate(pruned, kept_scores))
        self.allocator.prepare(AllocationContext(self.layers, unit_scores, self.objective, value, already, evaluate))
        check = self._measure_candidate if self.objective.verify else None
        result = loop.meet(self.layers, unit_scores, self.allocator, self.objective, value, check)
        changes = []
        for layer, pruned, elem in zip(self.layers, result.pruned, element_scores):
            before = layer.current_pruned()
            if pruned.any() and not torch.equal(pruned, before):
                changes.append(MaskChange(layer, before, pruned, elem, layer.masks(pruned, elem)))
        for mechanism in self.training:  # weights still whole here; updates are written, masks not yet
            changes = mechanism.reconstruct(changes)
        new_masks = [change.masks for change in changes]
        for mechanism in self.training:
            if mechanism.stages_masks:
                new_masks = mechanism.stage(step, changes)
        for masks in new_masks:  # all masks computed first: applying cannot half-fail
            for (module, param_name), keep in masks.items():
                set_mask(module, param_name, keep)
        self._done_steps.add(step)
        measured = result.value if self.objective.verify or self.objective.removes else self.objective.measure(self.model)
        self._warn_if_estimate_missed(value, result.value, measured)
        self.report.steps.append(StepRow(
            step=step, objective_target=value, objective_value=result.value, objective_measured=measured,
            objective_predicted=result.predicted,
            params=count_params(self.model), flops=self._flops(),
            tries=[t.as_dict() for t in result.tries],
            seconds=time.perf_counter() - started,
        ))
        return bool(new_masks)

    def _warn_if_estimate_missed(self, target: float, estimated: float, measured: float) -> None:
        """The search trusts the objective's estimate; a masked model that measures otherwise (an
        accounting the estimate gets wrong) is reported, not passed off as meeting the target."""
        if self.objective.verify or any(m.stages_masks for m in self.training):
            return  # verified objectives measured already; staged masks are not all applied yet
        if not self.objective.within_tolerance(measured, estimated):
            name = self.objective.registered_name
            warnings.warn(f"pruner_iface: the {name} objective estimated {estimated:.4g} for target {target:.4g}, "
                          f"but the masked model measures {measured:.4g}, more than {self.objective.tolerance:.0%} "
                          f"off the estimate (see report.steps[-1].objective_measured)", stacklevel=3)

    def _new_report(self) -> Report:
        return Report(
            parts=self._parts_spec, objective=self.objective.registered_name,
            objective_target=self.objective.target, dense_params=self._dense_params,
            dense_flops=self._dense_flops,
        )

    def _finish(self) -> Report:
        rows = []
        for layer in self.layers:
            pruned = layer.current_pruned()
            kept, total = layer.kept_and_total()
            rows.append(LayerRow(layer.name, list(layer.shape), kept, total, 1 - kept / total,
                                 layer.num_units - int(pruned.sum()), layer.num_units))
        self.report.layers = rows
        self.report.extra.update(self.target.report_notes(self.layers))
        for mechanism in self.training:
            self.report.extra.update(mechanism.notes())
        self.report.params = count_params(self.model)
        self.report.flops = self._flops()
        if self.report.steps:
            self.report.evaluation = self.report.steps[-1].evaluation
        return self.report
