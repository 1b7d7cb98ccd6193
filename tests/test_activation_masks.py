import math

import pytest
import torch
from conftest import same_state, state
from hypothesis import given, settings, strategies as st
from torch import nn

import pruner_iface as pi
from pruner_iface.errors import ConfigError, InputError


def mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 8))


@settings(max_examples=25, deadline=None)
@given(batch=st.integers(1, 4), width=st.integers(1, 40), density=st.floats(0.01, 1.0))
def test_density_keeps_the_largest_entries_of_each_sample(batch, width, density):
    model = nn.Sequential(nn.Linear(5, width))
    x = torch.randn(batch, 5)
    dense = model(x)
    with pi.mask_activations(model, {"0": {"density": density}}):
        out = model(x)
    k = math.ceil(density * width)
    assert torch.all((out != 0).sum(1) <= k)
    for row, full in zip(out, dense):
        kept = full.abs()[row != 0]
        dropped = full.abs()[(row == 0) & (full != 0)]
        assert kept.numel() == 0 or dropped.numel() == 0 or kept.min() >= dropped.max()
        assert torch.equal(row[row != 0], full[row != 0])
    assert torch.equal(model(x), dense)  # removed on leaving the block


def test_n_m_keeps_n_largest_of_every_m_along_the_chosen_dim():
    conv = nn.Sequential(nn.Conv2d(3, 8, 3))
    x = torch.randn(2, 3, 6, 6)
    dense = conv(x)
    handle = pi.mask_activations(conv, {"0": {"n": 2, "m": 4, "dim": 1}})
    out = conv(x)
    groups = out.movedim(1, -1).reshape(2, 4, 4, 2, 4)
    assert torch.all((groups != 0).sum(-1) == 2)
    full = dense.movedim(1, -1).reshape(2, 4, 4, 2, 4).abs()
    assert torch.equal(groups != 0, full >= full.topk(2, dim=-1).values[..., -1:])
    handle.remove()
    assert torch.equal(conv(x), dense)


def test_gradients_flow_through_kept_activations_only():
    model = mlp()
    x = torch.randn(1, 16)
    hidden = model[0](x)
    kept = hidden.abs() >= hidden.abs().topk(8).values[0, -1]
    with pi.mask_activations(model, {"0": {"density": 0.25}}):
        model(x).sum().backward()
    assert torch.equal(model[0].bias.grad != 0, kept[0] & (hidden[0] > 0))  # ReLU follows


@pytest.mark.parametrize("spec, match", [
    ({"fc9": {"density": 0.5}}, "no submodule 'fc9'"),
    ({"0": {"density": 0.0}}, r"density: the fraction kept must be in \(0, 1\]"),
    ({"0": {"n": 4, "m": 4}}, "1 <= n < m"),
    ({"0": {"density": 0.5, "n": 2, "m": 4}}, "either density or n and m"),
    ({"0": {"sparsity": 0.5}}, "unknown key"),
    ({}, "non-empty"),
])
def test_bad_specs_are_refused_before_any_hook_is_attached(spec, match):
    model = mlp()
    snapshot = state(model)
    ok = {"2": {"density": 0.5}}
    with pytest.raises(ConfigError, match=match):
        pi.mask_activations(model, {**ok, **spec} if spec else spec)
    assert same_state(model, snapshot) and not model[2]._forward_hooks


def test_n_m_that_does_not_divide_the_output_is_an_input_error():
    model = mlp()
    with pi.mask_activations(model, {"2": {"n": 2, "m": 3}}):
        with pytest.raises(InputError, match="groups of 3 do not divide"):
            model(torch.randn(1, 16))
