import copy

import pytest
import torch
import torch.nn.functional as F
from conftest import calibrate_and_prune as prune, same_state, state
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import pruner_iface as pi
from pruner_iface.errors import ConfigError, InputError


def producer_and_consumer(kind: str, width: int, bias: bool):
    """A producer whose channels the target prunes and one consumer that reads them (its
    outputs are the model's, so only its input columns change)."""
    if kind == "linear":
        return nn.Sequential(nn.Linear(5, width), nn.ReLU(), nn.Linear(width, 3, bias=bias)), torch.randn(96, 5)
    if kind == "conv1d":
        return (nn.Sequential(nn.Conv1d(2, width, 3, padding=1), nn.ReLU(), nn.Conv1d(width, 3, 3, padding=2,
                                                                                      dilation=2, bias=bias)),
                torch.randn(24, 2, 7))
    groups = 2 if kind == "grouped" else 1
    return (nn.Sequential(nn.Conv2d(2, 2 * width, 3, padding=1), nn.ReLU(),
                          nn.Conv2d(2 * width, 4, 3, stride=2, padding=1, groups=groups, bias=bias)),
            torch.randn(16, 2, 6, 5))


def consumer_error(model, dense, x, weight, bias):
    """Squared error of the consumer's output, given its weight and bias, against the dense model."""
    with torch.no_grad():
        inputs = model[1](model[0](x))
        target = dense(x)
    consumer = model[2]
    if isinstance(consumer, nn.Linear):
        out = F.linear(inputs, weight, bias)
    else:
        conv = F.conv1d if isinstance(consumer, nn.Conv1d) else F.conv2d
        out = conv(inputs, weight, bias, consumer.stride, consumer.padding, consumer.dilation, consumer.groups)
    return (out.double() - target.double()).pow(2).sum()


@settings(max_examples=25, deadline=None)
@given(kind=st.sampled_from(["linear", "conv1d", "conv2d", "grouped"]), width=st.integers(3, 8),
       ratio=st.floats(0.2, 0.6), bias=st.booleans(), seed=st.integers(0, 999))
def test_the_refit_is_the_least_squares_optimum_of_the_kept_columns(kind, width, ratio, bias, seed):
    """With damp=0 the calibration error's gradient in every kept weight (and the bias) vanishes,
    the error is no larger than without the refit, the report's error ratio is what the model
    shows, and the shrunk model computes what the masked one does."""
    torch.manual_seed(seed)
    model, x = producer_and_consumer(kind, width, bias)
    dense = copy.deepcopy(model)
    plain = copy.deepcopy(model)
    prune(plain, x, ratio, [])
    pruner = prune(model, x, ratio, [{"name": "least_squares", "damp": 0.0}])
    consumer = model[2]
    weight = consumer.weight.detach().clone().requires_grad_(True)
    b = consumer.bias.detach().clone().requires_grad_(True) if bias else None
    error = consumer_error(model, dense, x, weight, b)
    error.backward()
    kept = (model[0].weight.reshape(model[0].weight.shape[0], -1).abs().sum(1) != 0)
    per_group = weight.shape[1]
    kept_columns = kept.reshape(-1, per_group)[0] if kind == "grouped" else kept
    assert torch.equal(kept, (plain[0].weight.reshape(kept.numel(), -1).abs().sum(1) != 0))  # same units went
    grad = weight.grad[:, kept_columns]
    scale = consumer_error(plain, dense, x, plain[2].weight, plain[2].bias).item()
    assert grad.abs().max().item() <= 1e-4 * max(scale, 1.0)
    if bias:
        assert b.grad.abs().max().item() <= 1e-4 * max(scale, 1.0)
    assert error.item() <= scale * (1 + 1e-6) + 1e-9
    if scale > 1e-9:
        assert pruner.report.extra["least_squares_error_kept"] == pytest.approx(error.item() / scale, rel=1e-3, abs=1e-6)
    with torch.no_grad():
        masked = model(x)
    pruner.speed_up()
    with torch.no_grad():
        assert torch.allclose(model(x), masked, atol=1e-5)


@settings(max_examples=15, deadline=None)
@given(damp=st.floats(0.0, 10.0), seed=st.integers(0, 999))
def test_damping_never_makes_the_refit_worse_than_none(damp, seed):
    """The damped solution minimises error + λ·|Δ|², so its error is at most that of Δ = 0."""
    torch.manual_seed(seed)
    model, x = producer_and_consumer("conv2d", 6, True)
    dense = copy.deepcopy(model)
    pruner = prune(model, x, 0.5, [{"name": "least_squares", "damp": damp}])
    assert 0 <= pruner.report.extra["least_squares_error_kept"] <= 1 + 1e-9
    plain = copy.deepcopy(dense)
    prune(plain, x, 0.5, [])
    assert consumer_error(model, dense, x, model[2].weight, model[2].bias) <= \
        consumer_error(plain, dense, x, plain[2].weight, plain[2].bias) * (1 + 1e-6)


def test_a_deep_network_ends_closer_to_the_dense_one_than_with_bias_compensation():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 24), nn.ReLU(), nn.Linear(24, 24), nn.ReLU(), nn.Linear(24, 4))
    x = torch.randn(256, 6) + 0.3
    errors = {}
    for training in ([], ["bias_compensation"], ["least_squares"]):
        pruned = copy.deepcopy(model)
        prune(pruned, x, 0.5, training)
        with torch.no_grad():
            errors[str(training)] = (pruned(x) - model(x)).pow(2).mean().item()
    assert errors["['least_squares']"] < errors["['bias_compensation']"] < errors["[]"]


def test_bias_add_creates_the_missing_biases_and_keep_leaves_them_alone():
    torch.manual_seed(0)
    x = torch.randn(128, 5)
    for mode, has_bias in (("add", True), ("keep", False), ("refit", False)):
        model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3, bias=False))
        prune(model, x, 0.5, [{"name": "least_squares", "bias": mode}])
        assert (model[2].bias is not None) == has_bias, mode
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3))
    before = model[2].bias.detach().clone()
    prune(model, x, 0.5, [{"name": "least_squares", "bias": "keep"}])
    assert torch.equal(model[2].bias, before)


def test_gpt2_conv1d_consumers_are_refit_and_shrink_exactly():
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(n_layer=2, n_embd=32, n_head=4, n_positions=16, vocab_size=50)
    torch.manual_seed(0)
    model = transformers.GPT2Model(config).eval()
    dense = copy.deepcopy(model)
    ids = torch.randint(0, 50, (16, 12))

    def loss(m, batch):
        return m(batch).last_hidden_state.sum()

    def distance(a):
        with torch.no_grad():
            return (a(ids).last_hidden_state - dense(ids).last_hidden_state).pow(2).mean().item()

    errors = {}
    for training in ([], ["least_squares"]):
        pruned = copy.deepcopy(model)
        pruner = pi.Pruner(pruned, (ids[:1],), target="mlp", metric="l2",
                           objective={"name": "sparsity", "target": 0.5}, training=training)
        pruner.run(data=[ids[:8], ids[8:]], loss_fn=loss)
        errors[bool(training)] = distance(pruned)
    assert pruner.report.extra["least_squares_refitted"] == 2  # each block's c_proj
    assert errors[True] < 0.5 * errors[False]
    with torch.no_grad():
        masked = pruned(ids).last_hidden_state
    pruner.speed_up()
    with torch.no_grad():
        assert torch.allclose(pruned(ids).last_hidden_state, masked, atol=1e-4)


def test_a_consumer_it_cannot_refit_is_named_and_nothing_changes():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.ConvTranspose2d(8, 2, 3))
    before = state(model)
    with pytest.raises(ConfigError, match=r"'2'.weight \(ConvTranspose2d.*reads pruned units; refits are solved"):
        pi.Pruner(model, (torch.randn(1, 3, 9, 9),), target="channel", metric="l2",
                  objective={"name": "sparsity", "target": 0.3}, training=["least_squares"])
    assert same_state(model, before)


def test_padding_same_is_refused_with_the_supported_forms():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 2, 3, padding="same"))
    with pytest.raises(ConfigError, match="padding='same'.*zero padding given as numbers or 'valid'"):
        pi.Pruner(model, (torch.randn(1, 3, 9, 9),), target="channel", metric="l2",
                  objective={"name": "sparsity", "target": 0.3}, training=["least_squares"])


@pytest.mark.parametrize("option, value, message", [("damp", -1, "damp"), ("damp", True, "damp"),
                                                    ("bias", "zero", "bias"), ("batches", 0, "batches")])
def test_bad_options_are_named(option, value, message):
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 4))
    with pytest.raises((ConfigError, InputError), match=message):
        pi.Pruner(model, (torch.randn(2, 5),), target="channel", metric="l2",
                  objective={"name": "sparsity", "target": 0.3}, training=[{"name": "least_squares", option: value}])


def test_least_squares_needs_coupled_groups():
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 4))
    before = state(model)
    with pytest.raises(InputError, match="training mechanism 'least_squares' needs a graph-aware target"):
        pi.Pruner(model, (torch.randn(2, 5),), target="element", metric="l1",
                  objective={"name": "sparsity", "target": 0.3}, training=["least_squares"])
    assert same_state(model, before)
