"""LAMP, ERK, knapsack, sensitivity and annealing: formulas, bounds and reproducibility."""
import copy
import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch import nn

import pruner_iface as pi
from pruner_iface.allocators.erk import erk_densities
from pruner_iface.allocators.knapsack import _min_loss
from pruner_iface.allocators.lamp import lamp_scores
from pruner_iface.errors import MissingDataError


def test_lamp_score_is_square_over_the_sum_of_squares_above():
    scores = torch.tensor([3.0, 1.0, 2.0, float("-inf")])
    expected = [9 / 9, 1 / 14, 4 / 13, float("-inf")]
    assert lamp_scores(scores).tolist() == pytest.approx(expected)


def test_lamp_keeps_the_largest_unit_of_every_layer():
    layers = pi.TARGETS.build("channel-local").bind(nn.Sequential(nn.Linear(4, 6), nn.Linear(4, 6)))
    scores = [torch.arange(1.0, 7.0) * 100, torch.arange(1.0, 7.0)]  # second layer tiny everywhere
    p = pi.ALLOCATORS.build("lamp").allocate(layers, scores, 0.5, [0, 0])
    sets = p.pruned_sets(scores)
    assert not sets[1][-1] and not sets[0][-1] and sum(p.counts) == 6


def test_erk_densities_meet_the_budget_and_favour_small_layers():
    shapes = [(16, 3, 3, 3), (64, 16, 3, 3), (10, 64)]
    d = erk_densities(shapes, 0.3)
    numel = np.array([np.prod(s) for s in shapes])
    assert float((d * numel).sum() / numel.sum()) == pytest.approx(0.3)
    assert d[0] > d[1]  # more connections per parameter: denser
    capped = erk_densities(shapes, 0.9)
    assert capped.max() == pytest.approx(1.0) and float((capped * numel).sum() / numel.sum()) == pytest.approx(0.9)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_knapsack_dp_equals_brute_force(data):
    layers = data.draw(st.integers(1, 3))
    bins = data.draw(st.integers(2, 12))
    losses, savings = [], []
    for _ in range(layers):
        n = data.draw(st.integers(1, 4))
        losses.append(np.array(sorted(data.draw(st.lists(st.floats(0, 10), min_size=n, max_size=n)))))
        savings.append(np.array(data.draw(st.lists(st.integers(0, bins + 2), min_size=n, max_size=n))))
    best = None
    for combo in itertools.product(*[range(len(x)) for x in losses]):
        if sum(min(savings[i][c], bins) for i, c in enumerate(combo)) >= bins:
            value = sum(losses[i][c] for i, c in enumerate(combo))
            best = value if best is None else min(best, value)
    picks = _min_loss(bins, losses, savings)
    if best is None:
        assert picks is None
    else:
        assert sum(min(savings[i][c], bins) for i, c in enumerate(picks)) >= bins
        assert sum(losses[i][c] for i, c in enumerate(picks)) == pytest.approx(best)


def _evaluate_weights(model):
    """A deterministic evaluate(): how much of conv1's weight norm is left (higher is better)."""
    return float(model.conv1.weight.detach().abs().sum())


@pytest.mark.parametrize("name, extra", [
    ("lamp", {}), ("erk", {}), ("knapsack", {}), ("sensitivity", {"ratios": [0.25, 0.5, 0.75]}),
    ("annealing", {"start_temperature": 100.0, "stop_temperature": 60.0}),
])
def test_every_allocator_meets_a_flops_budget_within_bounds(name, extra, cnn, cnn_inputs):
    spec = {"name": name, "max_ratio": 0.75, "overrides": {"fc1": 0.0}, **extra}
    pruner = pi.Pruner(cnn, cnn_inputs, target={"name": "channel", "round_to": 2}, metric="l1", allocator=spec,
                       objective={"name": "flops", "target": 0.7})
    report = pruner.run(evaluate=_evaluate_weights)
    assert report.steps[-1].objective_measured <= 0.7 + 1e-9
    for layer in pruner.layers:
        kept = layer.num_units - int(layer.current_pruned().sum())
        assert kept % 2 == 0 and kept >= layer.num_units * 0.25 - 1e-9
        if layer.name == "fc1":
            assert kept == layer.num_units


@pytest.mark.parametrize("name", ["sensitivity", "annealing"])
def test_searching_allocators_need_evaluate_and_leave_the_model_alone(name, cnn, cnn_inputs):
    before = copy.deepcopy(cnn.state_dict())
    pruner = pi.Pruner(cnn, cnn_inputs, target="channel", metric="l1", allocator=name,
                       objective={"name": "flops", "target": 0.6})
    with pytest.raises(MissingDataError, match=f"allocator '{name}' compares candidate allocations with evaluate"):
        pruner.run()
    assert all(torch.equal(before[k], v) for k, v in cnn.state_dict().items())


def test_sensitivity_spares_the_layer_whose_pruning_hurts(cnn, cnn_inputs):
    pruner = pi.Pruner(cnn, cnn_inputs, target="channel", metric="l1", allocator="sensitivity",
                       objective={"name": "params", "target": 0.7})
    pruner.run(evaluate=_evaluate_weights)
    ratios = {layer.name: float(layer.current_pruned().float().mean()) for layer in pruner.layers}
    drops = pruner.allocator.drops
    hurt = max(drops, key=lambda k: drops[k][-1])
    assert "conv1" in hurt and ratios[hurt] == min(ratios.values())


def test_annealing_is_reproducible_and_sorts_ratios_by_layer_size(cnn, cnn_inputs):
    def run():
        model = copy.deepcopy(cnn)
        pruner = pi.Pruner(model, cnn_inputs, target="channel", metric="l1",
                           allocator={"name": "annealing", "seed": 3, "stop_temperature": 50.0},
                           objective={"name": "flops", "target": 0.6})
        pruner.run(evaluate=lambda m: -float(m(*cnn_inputs).detach().std()))
        return [layer.current_pruned().clone() for layer in pruner.layers], pruner

    first, pruner = run()
    second, _ = run()
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    sizes = [int(np.prod(layer.module.weight.shape)) for layer in pruner.layers]
    history = pruner.allocator.history
    assert len(history) == 7  # 100 → 50 cooling by 0.9: six coolings, seven candidates
    for entry in history:
        ranked = [r for _, r in sorted(zip(sizes, entry["ratios"]))]
        assert ranked == sorted(ranked)
        if entry["value"] is not None:
            assert entry["value"] <= 0.6 + 1e-9


# --- netadapt ---------------------------------------------------------------------------------
def test_netadapt_prunes_the_layer_evaluate_minds_least_first_and_meets_the_budget(cnn, cnn_inputs):
    def evaluate(model):  # pruning fc1's rows costs the most; conv2's the least
        w = {n: (m.weight != 0).float().mean().item() for n, m in model.named_modules() if n in ("conv2", "fc1")}
        return 3 * w["fc1"] + w["conv2"]

    pruner = pi.Pruner(cnn, cnn_inputs, target="channel", metric="l2",
                       allocator={"name": "netadapt", "step": 0.1, "decay": 1.0},
                       objective={"name": "flops", "target": 0.7})
    report = pruner.run(evaluate=evaluate)
    assert report.flops <= 0.7 * report.dense_flops + 1
    history = pruner.allocator.history
    assert history and history[0]["kept"] != "fc1"
    assert all(h["aim"] <= 0.3 + 1e-9 for h in history)
    assert [h["aim"] for h in history] == sorted(h["aim"] for h in history)  # each round asks for more
    path = pruner.allocator._path
    assert all(a <= b for before, after in zip(path, path[1:]) for a, b in zip(before, after))


def test_netadapt_options_are_checked():
    from pruner_iface.allocators import ALLOCATORS
    from pruner_iface.errors import ConfigError

    with pytest.raises(ConfigError, match="step: must be in"):
        ALLOCATORS.build({"name": "netadapt", "step": 0})
    with pytest.raises(ConfigError, match="decay: must be in"):
        ALLOCATORS.build({"name": "netadapt", "decay": 1.5})
