import pytest
import torch
from torch import nn

import pruner_iface as pi
from pruner_iface.errors import ConfigError


def test_sparsity_counts_units_for_block_and_weights_for_nm():
    model = nn.Sequential(nn.Linear(8, 4))
    obj = pi.OBJECTIVES.build({"name": "sparsity", "target": 0.5})
    block = pi.TARGETS.build({"name": "block", "block": [2, 2]}).bind(model)
    pruned = torch.tensor([True, False, False, False, False, False, False, False])
    assert obj.estimate(block, [pruned]) == pytest.approx(1 / 8)
    nm = pi.TARGETS.build({"name": "n:m", "n": 1, "m": 4}).bind(model)
    assert obj.estimate(nm, [torch.tensor([True] * 8)]) == pytest.approx(0.75)


def test_params_budget_counts_bias_entries_of_removed_rows():
    model = nn.Sequential(nn.Linear(4, 10), nn.Linear(10, 2))
    layers = pi.TARGETS.build("channel-local").bind(model, include=["0"])
    obj = pi.OBJECTIVES.build({"name": "params", "target": 0.5})
    obj.bind(model, (torch.randn(1, 4),), layers)
    pruned = torch.zeros(10, dtype=torch.bool)
    pruned[:5] = True
    dense = 4 * 10 + 10 + 10 * 2 + 2
    assert obj.estimate(layers, [pruned]) == pytest.approx((dense - 5 * 5) / dense)


def test_flops_budget_scales_layer_flops_by_removed_fraction():
    model = nn.Sequential(nn.Linear(4, 10), nn.Linear(10, 2))
    x = (torch.randn(3, 4),)
    layers = pi.TARGETS.build("element").bind(model, include=["0"])
    obj = pi.OBJECTIVES.build({"name": "flops", "target": 0.5})
    obj.bind(model, x, layers)
    dense = 3 * (4 * 10 + 10 * 2)
    assert obj.dense_flops == dense
    pruned = torch.zeros(40, dtype=torch.bool)
    pruned[:20] = True
    assert obj.estimate(layers, [pruned]) == pytest.approx((dense - 3 * 20) / dense)


@pytest.mark.parametrize("spec, pattern", [
    ({"name": "sparsity", "target": 1.0}, r"objective\.target: a sparsity must be in \[0, 1\)"),
    ({"name": "sparsity", "target": -0.1}, r"objective\.target"),
    ({"name": "flops", "target": 0.0}, r"objective\.target: a budget is a fraction"),
    ({"name": "params"}, r"objective\.target: is required"),
])
def test_objective_targets_are_validated(spec, pattern):
    with pytest.raises(ConfigError, match=pattern):
        pi.OBJECTIVES.build(spec, "objective")
