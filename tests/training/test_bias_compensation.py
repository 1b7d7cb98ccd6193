import copy

import pytest
import torch
from conftest import calibrate_and_prune as prune, same_state, state
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import pruner_iface as pi
from pruner_iface.errors import ConfigError, InputError


def mean_output(model, x):
    with torch.no_grad():
        out = model(x).double()
    return out.mean(0) if out.dim() == 2 else out.mean((0, 2, 3))


@settings(max_examples=20, deadline=None)
@given(width=st.integers(3, 12), ratio=st.floats(0.1, 0.6), conv=st.booleans(), bias=st.booleans(),
       seed=st.integers(0, 999))
def test_compensation_keeps_the_mean_output_over_the_calibration_data(width, ratio, conv, bias, seed):
    """The consumer is linear in its input, so adding W_{:,pruned}·mean(X_pruned) to its bias
    gives back the dense mean output exactly (a 1x1 conv reads every position alike)."""
    torch.manual_seed(seed)
    if conv:
        model = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, 4, 1, bias=bias))
        x = torch.randn(16, 3, 5, 5) + 0.5
    else:
        model = nn.Sequential(nn.Linear(5, width), nn.ReLU(), nn.Linear(width, 4, bias=bias))
        x = torch.randn(64, 5) + 0.5
    dense = copy.deepcopy(model)
    pruner = prune(model, x, ratio, ["bias_compensation"])
    assert torch.allclose(mean_output(model, x), mean_output(dense, x), atol=1e-4)
    assert model[2].bias is not None
    masked = mean_output(model, x)
    pruner.speed_up()
    assert torch.allclose(mean_output(model, x), masked, atol=1e-5)


def test_without_compensation_the_mean_output_moves():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 4))
    x = torch.randn(64, 5) + 0.5
    dense = copy.deepcopy(model)
    pruner = prune(model, x, 0.5, [])
    assert pruner.report.extra.get("bias_compensated_units") is None
    assert not torch.allclose(mean_output(model, x), mean_output(dense, x), atol=1e-3)


def test_report_counts_compensated_units():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 4))
    pruner = prune(model, torch.randn(32, 5), 0.5, ["bias_compensation"])
    assert pruner.report.extra["bias_compensated_units"] == 4


def test_a_consumer_without_bias_whose_outputs_are_pruned_too_is_refused():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3, bias=False), nn.ReLU(), nn.Conv2d(8, 2, 1))
    before = state(model)
    with pytest.raises(ConfigError, match="consumer '2' has no bias and its own outputs are pruned"):
        pi.Pruner(model, (torch.randn(1, 3, 9, 9),), target="channel", metric="l2", objective={"name": "sparsity", "target": 0.3},
                  training=["bias_compensation"])
    assert same_state(model, before)


def test_bias_compensation_needs_coupled_groups():
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 4))
    before = state(model)
    with pytest.raises(InputError, match="training mechanism 'bias_compensation' needs a graph-aware target"):
        pi.Pruner(model, (torch.randn(2, 5),), target="element", metric="l1", objective={"name": "sparsity", "target": 0.3},
                  training=["bias_compensation"])
    assert same_state(model, before)
