import pytest
import torch
from conftest import ce_loss
from torch import nn

import pruner_iface as pi
from pruner_iface.errors import InputError, MissingDataError
from pruner_iface.metrics.base import run_backward_passes


def one_layer(module):
    return pi.TARGETS.build("element").bind(nn.Sequential(module))[0]


def test_l1_and_l2_score_magnitudes():
    lin = nn.Linear(3, 2)
    layer = one_layer(lin)
    assert torch.equal(pi.METRICS.build("l1").element_scores(layer), lin.weight.detach().abs())
    assert torch.equal(pi.METRICS.build("l2").element_scores(layer), lin.weight.detach() ** 2)


def test_random_metric_is_reproducible_with_seed():
    layer = one_layer(nn.Linear(5, 4))
    a = pi.METRICS.build({"name": "random", "seed": 3}).element_scores(layer)
    b = pi.METRICS.build({"name": "random", "seed": 3}).element_scores(layer)
    assert torch.equal(a, b) and not torch.equal(a, pi.METRICS.build({"name": "random", "seed": 4}).element_scores(layer))


def _grads(model, batches):
    out = []
    for x, y in batches:
        model.zero_grad()
        ce_loss(model, (x, y)).backward()
        out.append(model.fc2.weight.grad.clone())
    model.zero_grad(set_to_none=True)
    return out


@pytest.mark.parametrize("name", ["gradient", "taylor", "snip", "snip_momentum"])
def test_gradient_metrics_match_hand_computed_values(name, cnn, cnn_batches):
    grads = _grads(cnn, cnn_batches)
    w = cnn.fc2.weight.detach()
    layers = pi.TARGETS.build("element").bind(cnn, include=["fc2"])
    metric = pi.METRICS.build(name)
    metric.collect(cnn, layers, cnn_batches, ce_loss)
    expected = {
        "gradient": sum(g.abs() for g in grads) / len(grads),
        "taylor": sum((w * g).abs() for g in grads) / len(grads),
        "snip": (w * grads[0]).abs(),
        "snip_momentum": 0.9 * (0.9 * (w * grads[0]).abs() + (w * grads[1]).abs()) + (w * grads[2]).abs(),
    }[name]
    assert torch.allclose(metric.element_scores(layers[0]), expected, atol=1e-6)


def test_data_pass_leaves_grads_modes_and_bn_statistics_untouched(cnn, cnn_batches):
    cnn.train()
    cnn.fc1.weight.grad = torch.ones_like(cnn.fc1.weight)
    cnn.conv1.weight.requires_grad_(False)
    running = cnn.bn1.running_mean.clone()
    layers = pi.TARGETS.build("element").bind(cnn)
    metric = pi.METRICS.build("taylor")
    metric.collect(cnn, layers, cnn_batches, ce_loss)
    assert cnn.training and torch.equal(cnn.bn1.running_mean, running)
    assert torch.equal(cnn.fc1.weight.grad, torch.ones_like(cnn.fc1.weight))
    assert cnn.fc2.weight.grad is None and not cnn.conv1.weight.requires_grad


def test_gradient_metric_without_data_fails_clearly(cnn):
    layers = pi.TARGETS.build("element").bind(cnn)
    with pytest.raises(MissingDataError, match="metric 'taylor' needs gradients"):
        run_backward_passes(cnn, layers, None, None, None, lambda: None, "taylor")
    with pytest.raises(MissingDataError, match="yielded no batch"):
        run_backward_passes(cnn, layers, iter([]), ce_loss, None, lambda: None, "taylor")
    with pytest.raises(InputError, match="has seen no gradient"):
        pi.METRICS.build("taylor").element_scores(layers[0])


def test_loss_fn_must_return_scalar_tensor(cnn, cnn_batches):
    layers = pi.TARGETS.build("element").bind(cnn)
    with pytest.raises(InputError, match="loss_fn must return a scalar tensor"):
        pi.METRICS.build("gradient").collect(cnn, layers, cnn_batches, lambda m, b: 1.0)


def test_reduce_option_is_validated():
    with pytest.raises(pi.ConfigError, match=r"metric\.reduce: 'median' is not one of sum, mean, max"):
        pi.METRICS.build({"name": "l2", "reduce": "median"}, "metric")


def test_data_pass_restores_each_submodules_own_mode(cnn, cnn_batches):
    cnn.train()
    cnn.bn1.eval()
    layers = pi.TARGETS.build("element").bind(cnn)
    pi.METRICS.build("taylor").collect(cnn, layers, cnn_batches, ce_loss)
    assert cnn.training and not cnn.bn1.training


def test_each_run_step_scores_with_fresh_gradients(cnn, cnn_inputs, cnn_batches):
    metric = pi.METRICS.build({"name": "taylor", "batches": 1})
    seen = []
    original = metric.observe

    def observe(layers):
        original(layers)
        seen.append(metric._count)

    metric.observe = observe
    pi.Pruner(cnn, cnn_inputs, target="element", metric=metric, scheduler={"name": "linear", "end": 2},
              objective={"name": "sparsity", "target": 0.5}).run(data=cnn_batches, loss_fn=ce_loss)
    assert seen == [1, 1]  # steps 1 and 2 each collect one fresh batch; step 0 (dense) collects none


def test_integer_scores_are_accepted():
    from dataclasses import dataclass

    @dataclass
    class IntScores(pi.Metric):
        def element_scores(self, layer):
            return (layer.weight.detach().abs() * 100).long()

    model = nn.Sequential(nn.Linear(6, 5))
    pruner = pi.Pruner(model, (torch.randn(1, 6),), target={"name": "block", "block": [2, 1], "remainder": "partial"},
                       metric=IntScores(reduce="max"), objective={"name": "sparsity", "target": 0.5})
    assert pruner.run().steps[-1].objective_value >= 0.5
