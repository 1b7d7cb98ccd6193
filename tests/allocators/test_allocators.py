import pytest
import torch
from torch import nn

import pruner_iface as pi
from pruner_iface.errors import ConfigError


def layers_of(*sizes):
    model = nn.Sequential(*[nn.Linear(4, n) for n in sizes])
    return pi.TARGETS.build("channel-local").bind(model)


def test_uniform_prunes_same_ratio_per_layer():
    layers = layers_of(10, 20)
    scores = [torch.rand(10), torch.rand(20)]
    p = pi.ALLOCATORS.build("uniform").allocate(layers, scores, 0.5, [0, 0])
    assert p.counts == [5, 10]


def test_global_uses_one_threshold_across_layers():
    layers = layers_of(4, 4)
    scores = [torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor([10.0, 20.0, 0.5, 40.0])]
    p = pi.ALLOCATORS.build("global").allocate(layers, scores, 3 / 8, [0, 0])
    assert p.counts == [2, 1]
    sets = p.pruned_sets(scores)
    assert sets[0].tolist() == [True, True, False, False] and sets[1].tolist() == [False, False, True, False]


def test_global_shares_tied_units_across_layers_with_exact_count():
    layers = layers_of(4, 4)
    scores = [torch.ones(4), torch.ones(4)]
    p = pi.ALLOCATORS.build("global").allocate(layers, scores, 0.5, [0, 0])
    assert p.counts == [2, 2]
    assert sum(int(s.sum()) for s in p.pruned_sets(scores)) == 4


@pytest.mark.parametrize("name", ["uniform", "global"])
def test_min_max_ratios_and_never_every_unit(name):
    layers = layers_of(10, 10)
    scores = [torch.rand(10), torch.rand(10) + 5]
    alloc = pi.ALLOCATORS.build({"name": name, "min_ratio": 0.2, "max_ratio": 0.6})
    low = alloc.allocate(layers, scores, 0.0, [0, 0])
    high = alloc.allocate(layers, scores, 1.0, [0, 0])
    assert low.counts == [2, 2] and high.counts == [6, 6]
    full = pi.ALLOCATORS.build(name).allocate(layers, scores, 1.0, [0, 0])
    assert full.counts == [9, 9]


def test_overrides_fix_or_bound_layers_by_regex():
    layers = layers_of(10, 10, 10)
    alloc = pi.ALLOCATORS.build({"name": "uniform", "overrides": {"0": 0.3, "2": {"max_ratio": 0.1}}})
    p = alloc.allocate(layers, [torch.rand(10) for _ in range(3)], 0.8, [0, 0, 0])
    assert p.counts == [3, 8, 1]


def test_units_already_pruned_are_a_lower_bound():
    layers = layers_of(10)
    p = pi.ALLOCATORS.build("uniform").allocate(layers, [torch.rand(10)], 0.1, [4])
    assert p.counts == [4]


@pytest.mark.parametrize("spec, key", [
    ({"min_ratio": 1.0}, "min_ratio"), ({"max_ratio": 0.0}, "max_ratio"),
    ({"min_ratio": 0.5, "max_ratio": 0.4}, "min_ratio"), ({"overrides": {"x": 1.0}}, "overrides.x"),
    ({"overrides": {"x": {"max": 0.1}}}, "overrides.x"),
])
def test_invalid_allocator_options_name_their_key(spec, key):
    with pytest.raises(ConfigError, match=rf"allocator\.{key}"):
        pi.ALLOCATORS.build({"name": "uniform", **spec}, "allocator")
