"""Masked model == physically shrunk model for channel-local pruning (the structured target here)."""
import pytest
import torch
from conftest import same_state, state
from hypothesis import given, settings, strategies as st
from torch import nn

import pruner_iface as pi


def _masked_vs_shrunk(model, inputs, **kwargs):
    pruner = pi.Pruner(model, inputs, target="channel-local", **kwargs)
    pruner.run()
    with torch.no_grad():
        masked = model.eval()(*inputs)
        params_masked = pi.count_params(model)
        flops_masked = pi.count_flops(model, inputs)
    pruner.speed_up()
    with torch.no_grad():
        shrunk = model(*inputs)
    return masked, shrunk, params_masked, flops_masked


@settings(max_examples=25, deadline=None)
@given(dims=st.integers(1, 3), c_in=st.integers(1, 6), widths=st.lists(st.integers(4, 12), min_size=1, max_size=3),
       bias=st.booleans(), ratio=st.floats(0.05, 0.75), metric=st.sampled_from(["l1", "l2", "random"]),
       allocator=st.sampled_from(["uniform", "global"]))
def test_masked_equals_shrunk_for_random_conv_stacks(dims, c_in, widths, bias, ratio, metric, allocator):
    conv = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[dims]
    norm = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}[dims]
    layers, c = [], c_in
    for w in widths:
        layers += [conv(c, w, 3, padding=1, bias=bias), norm(w), nn.ReLU()]
        c = w
    model = nn.Sequential(*layers, nn.Flatten(), nn.Linear(c * 4**dims, 3))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
    inputs = (torch.randn(2, c_in, *([4] * dims)),)
    masked, shrunk, params, flops = _masked_vs_shrunk(
        model, inputs, metric=metric, allocator=allocator, objective={"name": "sparsity", "target": ratio},
        exclude=[str(len(model) - 1)])
    assert torch.allclose(masked, shrunk, atol=1e-5 * max(1.0, masked.abs().max().item()))
    assert pi.count_params(model) == params
    assert pi.count_flops(model, inputs) == flops


def test_speed_up_linear_stack_shrinks_weights_and_keeps_output_width():
    model = nn.Sequential(nn.Linear(6, 10), nn.ReLU(), nn.Linear(10, 4))
    inputs = (torch.randn(3, 6),)
    masked, shrunk, _, _ = _masked_vs_shrunk(model, inputs, metric="l1",
                                              objective={"name": "sparsity", "target": 0.5}, include=["0"])
    assert torch.allclose(masked, shrunk, atol=1e-6)
    assert model[0].inner.weight.shape == (5, 6) and model[0].inner.out_features == 5
    assert model[0](inputs[0]).shape == (3, 10)


def test_shrunk_model_trains_and_saves(tmp_path):
    model = nn.Sequential(nn.Linear(6, 10), nn.ReLU(), nn.Linear(10, 4))
    inputs = (torch.randn(3, 6),)
    _masked_vs_shrunk(model, inputs, metric="l1", objective={"name": "sparsity", "target": 0.5}, include=["0"])
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model(inputs[0]).sum().backward()
    opt.step()
    torch.save(model, tmp_path / "m.pt")
    loaded = torch.load(tmp_path / "m.pt", weights_only=False)
    assert torch.equal(loaded(inputs[0]), model(inputs[0]))


def test_grouped_conv_speed_up_is_refused_before_any_change():
    model = nn.Sequential(nn.Conv2d(4, 8, 3, groups=2), nn.Conv2d(8, 8, 1))
    inputs = (torch.randn(1, 4, 5, 5),)
    pruner = pi.Pruner(model, inputs, target="channel-local", metric="l1", objective={"name": "sparsity", "target": 0.5})
    pruner.run()
    before = state(model)
    with pytest.raises(pi.SpeedUpError, match=r"module '0'.*grouped convolution \(groups=2\)"):
        pruner.speed_up()
    assert same_state(model, before) and isinstance(model[1], nn.Conv2d)


def test_speed_up_handles_unbatched_conv_input():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 1))
    x = torch.randn(3, 6, 6)  # no batch dimension
    masked, shrunk, _, _ = _masked_vs_shrunk(model, (x,), metric="l1",
                                              objective={"name": "sparsity", "target": 0.5}, include=["0"])
    assert torch.allclose(masked, shrunk, atol=1e-6)


def test_speed_up_refuses_linear_subclasses_read_by_their_owner():
    model = nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, batch_first=True)
    inputs = (torch.randn(2, 5, 16),)
    pruner = pi.Pruner(model, inputs, target="channel-local", metric="l1",
                       objective={"name": "sparsity", "target": 0.25})
    pruner.run()
    before = state(model)
    with pytest.raises(pi.SpeedUpError, match="'self_attn.out_proj' is a NonDynamicallyQuantizableLinear"):
        pruner.speed_up()
    assert same_state(model, before) and model(*inputs).shape == (2, 5, 16)


def test_speed_up_refuses_tied_weights():
    first, second = nn.Linear(6, 6), nn.Linear(6, 6)
    second.weight = first.weight
    model = nn.Sequential(first, nn.ReLU(), second)
    pruner = pi.Pruner(model, (torch.randn(2, 6),), target="channel-local", metric="l1",
                       objective={"name": "sparsity", "target": 0.5})
    pruner.run()
    with pytest.raises(pi.SpeedUpError, match="tied to another module"):
        pruner.speed_up()
