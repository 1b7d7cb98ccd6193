"""The metric library against hand-computed values: fpgm, hessian, taylor power, movement, wanda,
bn_scale, apoz and mean_activation."""
import pytest
import torch
from conftest import SmallCNN, ce_loss
from hypothesis import given, settings, strategies as st
from torch import nn

import pruner_iface as pi
from pruner_iface.errors import InputError
from pruner_iface.loop import score_units


def _grads(model, batches, module):
    out = []
    for x, y in batches:
        model.zero_grad()
        ce_loss(model, (x, y)).backward()
        out.append(module.weight.grad.clone())
    model.zero_grad(set_to_none=True)
    return out


@settings(max_examples=25, deadline=None)
@given(rows=st.integers(1, 9), cols=st.integers(1, 7), seed=st.integers(0, 2**16))
def test_fpgm_row_sum_is_the_distance_sum_to_the_other_filters(rows, cols, seed):
    torch.manual_seed(seed)
    lin = nn.Linear(cols, rows)
    layer = pi.TARGETS.build("channel-local").bind(nn.Sequential(lin))[0]
    scores = pi.METRICS.build("fpgm").element_scores(layer)
    w = lin.weight.detach()
    expected = torch.tensor([sum(float((w[i] - w[j]).norm()) for j in range(rows)) for i in range(rows)])
    if rows == 1:
        expected = torch.zeros(1)
    assert torch.allclose(scores.sum(1), expected, atol=1e-4)


def test_fpgm_prunes_the_filter_nearest_the_geometric_median():
    conv = nn.Conv2d(2, 4, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0], [-1.0, 0.1], [0.0, 1.0]]).reshape(4, 2, 1, 1))
    model = nn.Sequential(conv)
    pruner = pi.Pruner(model, (torch.randn(1, 2, 3, 3),), target="channel-local", metric="fpgm",
                       objective={"name": "sparsity", "target": 0.25})
    pruner.run()
    assert conv.weight_mask.reshape(4, -1).any(1).tolist() == [False, True, True, True]  # [0, 0] is the median


@pytest.mark.parametrize("name,statistic", [
    ("hessian", lambda w, g: 0.5 * w ** 2 * g ** 2),
    ({"name": "taylor", "power": 2}, lambda w, g: (w * g) ** 2),
])
def test_gradient_statistics_average_over_batches(name, statistic, cnn, cnn_batches):
    grads = _grads(cnn, cnn_batches, cnn.fc1)
    w = cnn.fc1.weight.detach()
    layers = pi.TARGETS.build("element").bind(cnn, include=["fc1"])
    metric = pi.METRICS.build(name)
    metric.collect(cnn, layers, cnn_batches, ce_loss)
    expected = sum(statistic(w, g) for g in grads) / len(grads)
    assert torch.allclose(metric.element_scores(layers[0]), expected, rtol=1e-5, atol=1e-12)


def test_taylor_power_must_be_one_or_two():
    with pytest.raises(pi.ConfigError, match=r"power.*must be 1"):
        pi.METRICS.build({"name": "taylor", "power": 3})


def test_movement_accumulates_minus_w_times_g_and_survives_a_prune(cnn, cnn_batches):
    grads = _grads(cnn, cnn_batches, cnn.fc2)
    w = cnn.fc2.weight.detach()
    layers = pi.TARGETS.build("element").bind(cnn, include=["fc2"])
    metric = pi.METRICS.build("movement")
    metric.collect(cnn, layers, cnn_batches, ce_loss)
    expected = -sum(w * g for g in grads)
    assert torch.allclose(metric.element_scores(layers[0]), expected, atol=1e-6)
    metric.after_prune()
    assert torch.allclose(metric.element_scores(layers[0]), expected, atol=1e-6)


def test_movement_ranks_weights_moving_away_from_zero_highest():
    lin = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 1.0]]))
    layers = pi.TARGETS.build("element").bind(nn.Sequential(lin))
    metric = pi.METRICS.build("movement")
    lin.weight.grad = torch.tensor([[-1.0, 1.0]])  # SGD grows weight 0, shrinks weight 1
    metric.observe(layers)
    scores = metric.element_scores(layers[0])
    assert scores[0, 0] > 0 > scores[0, 1]


def _forward_loss(model, batch):
    return model(batch).sum()


def test_wanda_is_weight_magnitude_times_input_feature_norm():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 3), nn.ReLU(), nn.Linear(3, 2))
    data = [torch.randn(4, 6, 5) for _ in range(3)]  # [batch, tokens, features]
    layers = pi.TARGETS.build("element").bind(model)
    metric = pi.METRICS.build("wanda")
    metric.collect(model, layers, data, _forward_loss)
    x = torch.cat([d.reshape(-1, 5) for d in data])
    assert torch.allclose(metric.element_scores(layers[0]), model[0].weight.abs() * x.norm(dim=0), rtol=1e-5)
    hidden = torch.relu(model[0](x))
    assert torch.allclose(metric.element_scores(layers[1]), model[2].weight.abs() * hidden.norm(dim=0), rtol=1e-5)


@pytest.mark.parametrize("groups", [1, 2])
def test_wanda_conv_columns_read_their_input_channel_norm(groups):
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, 3, groups=groups)
    data = [torch.randn(2, 4, 5, 5)]
    layers = pi.TARGETS.build("element").bind(nn.Sequential(conv))
    metric = pi.METRICS.build("wanda")
    metric.collect(nn.Sequential(conv), layers, data, _forward_loss)
    norms = data[0].transpose(0, 1).reshape(4, -1).norm(dim=1)
    scores = metric.element_scores(layers[0])
    for o in range(6):
        group = o // (6 // groups)
        for j in range(4 // groups):
            assert torch.allclose(scores[o, j], conv.weight[o, j].abs() * norms[group * (4 // groups) + j])


def test_wanda_with_row_scope_prunes_the_same_count_in_every_row():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 4))
    data = [torch.randn(16, 8)]
    pruner = pi.Pruner(model, (data[0],), target={"name": "element", "scope": "row"}, metric="wanda",
                       objective={"name": "sparsity", "target": 0.5})
    pruner.run(data=data, loss_fn=_forward_loss)
    for lin, cols in ((model[0], 8), (model[2], 6)):
        assert lin.weight_mask.sum(1).tolist() == [cols // 2] * lin.out_features


def test_wanda_refuses_a_module_without_input_features():
    model = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 2))
    pruner = pi.Pruner(model, (torch.tensor([[1, 2]]),), target={"name": "element", "module_types": ["Embedding", "Linear"]},
                       metric="wanda", objective={"name": "sparsity", "target": 0.5})
    with pytest.raises(InputError, match=r"'0' \(Embedding\).*supported: Linear"):
        pruner.run(data=[torch.tensor([[1, 2]])], loss_fn=_forward_loss)


def test_bn_scale_scores_channels_by_their_batchnorm_gamma(cnn, cnn_inputs):
    with torch.no_grad():
        cnn.bn1.weight.copy_(torch.tensor([0.5, -3.0, 0.1, 2.0, -0.05, 1.0, 0.2, -0.7]))
    pruner = pi.Pruner(cnn, cnn_inputs, target="channel", metric="bn_scale", include=["conv1"],
                       objective={"name": "sparsity", "target": 0.5})
    pruner.run()
    kept = cnn.conv1.weight_mask.reshape(8, -1).any(1).tolist()
    assert kept == [False, True, False, True, False, True, False, True]  # 4 of 8 go: |γ| 0.05, 0.1, 0.2, 0.5


def test_bn_scale_on_channels_without_batchnorm_names_the_layer(cnn, cnn_inputs):
    pruner = pi.Pruner(cnn, cnn_inputs, target="channel", metric="bn_scale", include=["conv2"],
                       objective={"name": "sparsity", "target": 0.5})
    with pytest.raises(InputError, match="'conv2'.*no affine BatchNorm"):
        pruner.run()


def test_bn_scale_needs_a_graph_aware_target(cnn, cnn_inputs):
    pruner = pi.Pruner(cnn, cnn_inputs, target="channel-local", metric="bn_scale",
                       objective={"name": "sparsity", "target": 0.5})
    with pytest.raises(InputError, match="use the 'channel' target"):
        pruner.run()


@pytest.mark.parametrize("name", ["apoz", "mean_activation"])
def test_apoz_and_mean_activation_read_the_post_activation_channels(name, cnn, cnn_inputs, cnn_batches):
    data = [x for x, _ in cnn_batches]
    seen = []
    handle = cnn.conv2.register_forward_pre_hook(lambda m, i: seen.append(i[0].detach()))
    with torch.no_grad():
        for x in data:
            cnn(x)
    handle.remove()
    act = torch.cat(seen).transpose(0, 1).reshape(8, -1)  # relu(bn1(conv1(x))) per channel
    want = {"apoz": 1 - (act == 0).float().mean(1), "mean_activation": act.mean(1)}[name]
    pruner = pi.Pruner(cnn, cnn_inputs, target="channel", metric=name, include=["conv1"],
                       objective={"name": "sparsity", "target": 0.5})
    pruner.metric.collect(cnn, pruner.layers, data, _forward_loss)
    assert torch.allclose(pruner.metric.unit_scores(pruner.layers[0]), want, atol=1e-5)
    assert not cnn.conv2._forward_pre_hooks  # hooks removed


def test_every_new_metric_prunes_the_cnn_end_to_end(cnn, cnn_inputs, cnn_batches):
    for name, target in [("fpgm", "channel"), ("hessian", "element"), ("movement", "element"),
                         ("wanda", {"name": "n:m", "n": 2, "m": 4}), ("apoz", "channel"),
                         ("mean_activation", "channel")]:
        model = type(cnn)().eval()
        pruner = pi.Pruner(model, cnn_inputs, target=target, metric=name, include=["conv2", "fc1"],
                           objective={"name": "sparsity", "target": 0.5})
        pruner.run(data=cnn_batches, loss_fn=ce_loss)
        assert pruner.report.steps[-1].objective_value >= 0.45, name


def _mlp_and_data(seed=0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 3))
    x = torch.randn(64, 8) + 1.0
    return model, x, [x[:32], x[32:]]


def test_fluctuation_is_input_variance_times_consumer_column_norm():
    model, x, batches = _mlp_and_data()
    pruner = pi.Pruner(model, (x[:2],), target="channel", metric="fluctuation", objective={"name": "sparsity",
                                                                                           "target": 0.5})
    pruner.metric.collect(model, pruner.layers, batches, _forward_loss)
    with torch.no_grad():
        hidden = model[1](model[0](x)).double()
    expected = hidden.var(0, unbiased=False) * model[2].weight.detach().double().pow(2).sum(0)
    assert torch.allclose(pruner.metric.unit_scores(pruner.layers[0]).double(), expected, rtol=1e-4, atol=1e-7)


def test_fluctuation_standardize_gives_each_layer_zero_mean_and_unit_spread(cnn, cnn_inputs, cnn_batches):
    metric = pi.METRICS.build({"name": "fluctuation", "standardize": True})
    pruner = pi.Pruner(cnn, cnn_inputs, target="channel", metric=metric, objective={"name": "flops", "target": 0.8})
    metric.collect(cnn, pruner.layers, cnn_batches, ce_loss)
    for layer in pruner.layers:
        scores = metric.unit_scores(layer)
        if scores.numel() > 1:
            assert abs(float(scores.mean())) < 1e-5 and abs(float(scores.std(unbiased=False)) - 1) < 1e-4


def test_fluctuation_needs_a_graph_aware_target_and_data():
    model, x, _ = _mlp_and_data()
    pruner = pi.Pruner(model, (x[:2],), target="element", metric="fluctuation", objective={"name": "sparsity",
                                                                                           "target": 0.5})
    with pytest.raises(InputError, match="metric 'fluctuation' needs a graph-aware target"):
        pruner.run(data=[x], loss_fn=_forward_loss)
    with pytest.raises(pi.errors.MissingDataError, match="metric 'fluctuation'"):
        pruner.run()


def test_random_scores_of_already_pruned_channels_stay_first_over_several_steps(cnn, cnn_inputs):
    """random marks pruned slices -inf; a coupled group's normalisation must not turn that into NaN."""
    pruner = pi.Pruner(cnn, cnn_inputs, target="channel", metric={"name": "random", "seed": 3}, allocator="global",
                       scheduler={"name": "agp", "end": 3}, objective={"name": "flops", "target": 0.5})
    report = pruner.run()
    assert report.steps[-1].objective_value <= 0.5 + 1e-9


@pytest.mark.parametrize("name", pi.METRICS.names())
def test_every_registered_metric_prunes_coupled_channels_and_shrinks(name, cnn_inputs, cnn_batches):
    """The channel target hands metrics member tensors, not layers; each metric must score them."""
    model = SmallCNN().eval()
    include = ["conv1"] if name == "bn_scale" else None  # the only producer followed by a BatchNorm
    pruner = pi.Pruner(model, cnn_inputs, target="channel", metric=name, include=include,
                       objective={"name": "sparsity", "target": 0.5})
    pruner.run(data=cnn_batches, loss_fn=ce_loss)
    with torch.no_grad():
        masked = model(cnn_inputs[0])
    pruner.speed_up()
    assert pruner.report.steps[-1].objective_value == pytest.approx(0.5, abs=0.05)
    with torch.no_grad():
        assert torch.allclose(model(cnn_inputs[0]), masked, atol=1e-5)


class _TwoBranches(nn.Module):
    """Two equal branches whose outputs add; branch `quiet` contributes 1000x less."""

    def __init__(self):
        super().__init__()
        self.loud_in, self.loud_out = nn.Linear(4, 8), nn.Linear(8, 2)
        self.quiet_in, self.quiet_out = nn.Linear(4, 8), nn.Linear(8, 2)
        with torch.no_grad():
            self.quiet_out.weight.mul_(1e-3)

    def forward(self, x):
        return self.loud_out(self.loud_in(x).relu()) + self.quiet_out(self.quiet_in(x).relu())


def _squared_output(model, x):
    return model(x).pow(2).sum()


@pytest.mark.parametrize("name", ["taylor", "hessian", "snip"])
def test_loss_change_metrics_compare_units_across_layers(name):
    """Their scores estimate a loss change, so a global threshold prunes the branch that matters
    least; normalising each layer's scores would spread the cut evenly over both."""
    model = _TwoBranches()
    x = torch.randn(64, 4)
    pruner = pi.Pruner(model, (x[:2],), target="channel", metric=name, allocator="global",
                       objective={"name": "sparsity", "target": 6 / 16})
    pruner.run(data=[x[:32], x[32:]], loss_fn=_squared_output)
    assert {layer.name: int(layer.current_pruned().sum()) for layer in pruner.layers} == {"loud_in": 0, "quiet_in": 6}


def test_loss_change_scores_of_a_unit_are_the_plain_sum_over_its_slices():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    x = torch.randn(16, 3)
    pruner = pi.Pruner(model, (x[:2],), target="channel", metric="taylor",
                       objective={"name": "sparsity", "target": 0.5})
    pruner.metric.collect(model, pruner._scored(), [x], _squared_output)
    model.zero_grad()
    _squared_output(model, x).backward()
    taylor = [(p.detach() * p.grad).abs() for p in (model[0].weight, model[0].bias, model[2].weight)]
    expected = taylor[0].sum(1) + taylor[1] + taylor[2].sum(0)
    scores, _ = score_units(pruner.layers, pruner.metric)
    assert torch.allclose(scores[0], expected, rtol=1e-5)
