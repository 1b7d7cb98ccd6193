import pytest
import torch
from conftest import same_state, state
from torch import nn

import pruner_iface as pi
from pruner_iface.errors import ConfigError, PrunerError
from pruner_iface.masks import get_mask


def mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 8))


X = (torch.randn(4, 16),)


def half_pruner(model, **parts):
    """Unstructured magnitude pruning of `model` to 50%, with the given scheduler / training."""
    return pi.Pruner(model, X, target="element", metric="l1", objective={"name": "sparsity", "target": 0.5}, **parts)


def backward_and_step(model, optimizer):
    """A training step's loss, backward and optimizer step, with no pruner hook in between."""
    optimizer.zero_grad()
    model(*X).sum().backward()
    optimizer.step()


def zero_loss_step(pruner, model, lr, steps=1, optimizer=None):
    """Training steps whose loss has no gradient, so only the mechanisms move the weights."""
    optimizer = optimizer or torch.optim.SGD(model.parameters(), lr=lr)
    for _ in range(steps):
        pruner.on_step_begin()
        optimizer.zero_grad()
        (model(*X).sum() * 0).backward()
        pruner.on_before_optimizer_step()
        optimizer.step()
        pruner.on_after_optimizer_step()
    return optimizer


def test_group_lasso_shrinks_every_unit_norm_by_lr_times_alpha():
    model = mlp()
    pruner = pi.Pruner(model, X, target={"name": "block", "block": [2, 4]}, metric="l1",
                       objective={"name": "sparsity", "target": 0.5}, scheduler={"name": "one-pass", "start": 5},
                       training=[{"name": "group_lasso", "alpha": 0.1}])
    layer = pruner.layers[0]
    before = layer.unit_sums([model[0].weight.detach() ** 2]).sqrt()
    pruner.on_train_begin()
    zero_loss_step(pruner, model, lr=0.05)
    after = layer.unit_sums([model[0].weight.detach() ** 2]).sqrt()
    assert torch.allclose(before - after, torch.full_like(before, 0.05 * 0.1), atol=1e-5)


def test_group_lasso_over_coupled_channels_penalises_every_member_slice(cnn, cnn_inputs):
    pruner = pi.Pruner(cnn, cnn_inputs, target="channel", metric="l2", objective={"name": "flops", "target": 0.8},
                       training=[{"name": "group_lasso", "alpha": 0.5}])
    mechanism = pruner.training[0]
    conv1 = next(layer for layer in pruner.layers if layer.name == "conv1")
    # conv1's channel c: conv1.weight[c], conv1.bias[c], bn1.weight[c], bn1.bias[c], conv2.weight[:, c]
    w = {n: p.detach() for n, p in cnn.named_parameters()}
    per_unit = (w["conv1.weight"].flatten(1).pow(2).sum(1) + w["conv1.bias"] ** 2 + w["bn1.weight"] ** 2
                + w["bn1.bias"] ** 2 + w["conv2.weight"].transpose(0, 1).flatten(1).pow(2).sum(1))
    squares = [m.weight.detach().pow(2) for m in conv1.members()]
    assert torch.allclose(conv1.unit_sums(squares), per_unit, rtol=1e-5)
    total = sum(l.unit_sums([m.weight.detach().pow(2) for m in l.members()]).add(1e-12).sqrt().sum()
                for l in pruner.layers)
    assert torch.allclose(mechanism.penalty().detach(), 0.5 * total, rtol=1e-5)


def test_slim_adds_alpha_sign_gamma_to_batchnorm_gradients(cnn, cnn_inputs):
    pruner = pi.Pruner(cnn, cnn_inputs, target="channel", metric="bn_scale",
                       objective={"name": "flops", "target": 0.8}, training=[{"name": "slim", "alpha": 0.01}])
    with torch.no_grad():
        cnn.bn1.weight.copy_(torch.linspace(-1, 1, 8))
    gamma = cnn.bn1.weight.detach().clone()
    pruner.on_train_begin()
    cnn.zero_grad()
    (cnn(*cnn_inputs).sum() * 0).backward()
    pruner.on_before_optimizer_step()
    assert torch.allclose(cnn.bn1.weight.grad, 0.01 * gamma.sign())
    assert torch.count_nonzero(cnn.conv1.weight.grad) == 0  # only BatchNorm scales are penalised


def test_pattern_lock_keeps_the_zeros_present_at_train_begin_through_momentum_training():
    model = mlp()
    with torch.no_grad():
        model[0].weight[:, ::3] = 0
    zeros = model[0].weight == 0
    pruner = pi.Pruner(model, X, target="element", metric="l1", objective={"name": "sparsity", "target": 0.0},
                       training=["pattern_lock"])
    pruner.on_train_begin()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01)
    for _ in range(3):
        pruner.on_step_begin()
        optimizer.zero_grad()
        model(*X).pow(2).mean().backward()
        pruner.on_before_optimizer_step()
        optimizer.step()
        pruner.on_after_optimizer_step()
    report = pruner.on_train_end()
    assert torch.equal(model[0].weight == 0, zeros)
    assert torch.equal(get_mask(model[0], "weight"), ~zeros)
    assert report.extra["pattern_lock_zeros"] == int(zeros.sum())


def progressive_pruner(model, frequency, end):
    return pi.Pruner(model, X, target={"name": "block", "block": [1, 4]}, metric="l1", include=["0"],
                     scheduler={"name": "linear", "start": 0, "end": end, "frequency": frequency},
                     objective={"name": "sparsity", "target": 0.5}, training=["progressive"])


def test_progressive_zeroes_a_new_block_over_four_substeps_in_score_order():
    model = mlp()
    pruner = progressive_pruner(model, frequency=8, end=16)
    pruner.on_train_begin()
    zeros_in_new_blocks = {}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    for step in range(16):
        pruner.on_step_begin()
        if step in (8, 10, 12, 14):
            blocks = (model[0].weight.detach() == 0).reshape(32, 4, 4).sum(-1)
            zeros_in_new_blocks[step] = sorted(set(blocks.flatten().tolist()))
        optimizer.zero_grad()
        (model(*X).sum() * 0).backward()
        pruner.on_before_optimizer_step()
        optimizer.step()
        pruner.on_after_optimizer_step()
    assert zeros_in_new_blocks == {8: [0, 1], 10: [0, 2], 12: [0, 3], 14: [0, 4]}
    weight = model[0].weight.detach().clone()
    pruner.on_step_begin()  # step 16: the last pruning step, again staged
    zeros = (model[0].weight == 0).reshape(32, 4, 4)
    partial = zeros.sum(-1) == 1
    assert partial.any()
    # inside each newly pruned block the first zero is the block's smallest |w|
    smallest = weight.abs().reshape(32, 4, 4).argmin(-1)
    assert torch.equal(zeros.float().argmax(-1)[partial], smallest[partial])
    report = pruner.on_train_end()  # sub-steps training did not reach are applied at the end
    assert report.steps[-1].objective_value >= 0.5
    blocks = (model[0].weight == 0).reshape(32, 4, 4).sum(-1)
    assert set(blocks.flatten().tolist()) == {0, 4}


def test_progressive_falls_back_to_pruning_at_once_when_frequency_is_below_its_steps():
    model = mlp()
    pruner = progressive_pruner(model, frequency=2, end=16)
    pruner.on_train_begin()
    zero_loss_step(pruner, model, lr=0.0, steps=5)
    blocks = (model[0].weight == 0).reshape(32, 4, 4).sum(-1)
    assert set(blocks.flatten().tolist()) == {0, 4}
    with pytest.warns(UserWarning, match="before pruning steps"):
        assert "fell back" in pruner.on_train_end().extra["progressive"]


def test_rewind_restores_initial_weights_after_every_lottery_round():
    model = mlp()
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    S, N = 0.8, 3
    pruner = pi.Pruner(model, X, target="element", metric="l1", allocator="global",
                       scheduler={"name": "decay", "curve": "exp", "start": 0, "end": N},
                       objective={"name": "sparsity", "target": S}, training=["rewind"])
    seen = []

    def fine_tune(m, step):
        kept = m[0].weight_mask
        seen.append((step, torch.equal(m[0].weight, initial["0.weight"] * kept)))
        with torch.no_grad():
            for p in m.parameters():
                p.add_(0.5)  # training moves the weights; the next round rewinds them

    report = pruner.run(fine_tune=fine_tune)
    assert seen == [(1, True), (2, True), (3, True)]
    values = [s.objective_value for s in report.steps]
    expected = [1 - (1 - S) ** (i / N) for i in (1, 2, 3)]
    assert all(v >= e - 1e-3 and v - e < 0.01 for v, e in zip(values, expected))
    assert report.extra["rewinds"] == 3


def test_skipping_on_before_optimizer_step_with_group_lasso_is_caught_at_the_next_hook():
    model = mlp()
    pruner = half_pruner(model, scheduler={"name": "one-pass", "start": 3}, training=["group_lasso"])
    pruner.on_train_begin()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    pruner.on_step_begin()
    backward_and_step(model, optimizer)  # on_before_optimizer_step() forgotten
    snapshot = state(model)
    with pytest.raises(PrunerError, match=r"'group_lasso'.*on_before_optimizer_step\(\).*stepped 1 times"):
        pruner.on_after_optimizer_step()
    assert same_state(model, snapshot)


def test_schedule_counter_without_on_after_optimizer_step_is_caught_at_train_end():
    model = mlp()
    pruner = half_pruner(model, scheduler={"name": "linear", "start": 0, "end": 4})
    pruner.on_train_begin()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    pruner.on_step_begin()
    backward_and_step(model, optimizer)  # on_after_optimizer_step() forgotten: the counter never advances
    with pytest.raises(PrunerError, match="step counter advances there"):
        pruner.on_train_end()


def test_explicit_steps_do_not_need_the_counter_hook():
    model = mlp()
    pruner = half_pruner(model, scheduler={"name": "linear", "start": 0, "end": 2})
    pruner.on_train_begin()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    for epoch in range(3):
        pruner.on_step_begin(epoch)
        backward_and_step(model, optimizer)
    assert pruner.on_train_end().steps[-1].objective_value >= 0.5


def test_mechanism_hooks_before_on_train_begin_are_refused():
    model = mlp()
    pruner = half_pruner(model, training=["rewind"])
    with pytest.raises(PrunerError, match=r"before on_train_begin\(\).*'rewind'"):
        pruner.on_step_begin()


def test_run_with_a_per_step_mechanism_needs_a_fine_tune_that_calls_the_hooks():
    model = mlp()
    snapshot = state(model)
    pruner = half_pruner(model, training=["group_lasso"])
    with pytest.raises(ConfigError, match="pass fine_tune"):
        pruner.run()
    assert same_state(model, snapshot)

    def fine_tune_without_hooks(m, step):
        backward_and_step(m, torch.optim.SGD(m.parameters(), lr=0.01))

    with pytest.raises(PrunerError, match="end of fine_tune at step 0"):
        pruner.run(fine_tune=fine_tune_without_hooks)

    pruner2 = half_pruner(mlp(), training=["group_lasso"])

    def fine_tune_with_hooks(m, step):
        opt = torch.optim.SGD(m.parameters(), lr=0.01)
        m(*X).sum().backward()
        pruner2.on_before_optimizer_step()
        opt.step()
        pruner2.on_after_optimizer_step()

    assert pruner2.run(fine_tune=fine_tune_with_hooks).steps[-1].objective_value >= 0.5


def test_progressive_is_refused_by_run():
    model = mlp()
    with pytest.raises(ConfigError, match="training-loop hooks"):
        progressive_pruner(model, frequency=8, end=16).run()


@pytest.mark.parametrize("training, match", [
    (["nope"], "unknown training mechanism 'nope'"),
    (["slim", "slim"], "listed more than once"),
    ([{"name": "group_lasso", "alpha": -1}], "alpha: must be a positive number"),
    ([{"name": "progressive", "steps": 1}], "steps: must be an integer >= 2"),
    ("group_lasso", "must be a list"),
])
def test_bad_training_specs_are_refused(training, match):
    model = mlp()
    snapshot = state(model)
    with pytest.raises(ConfigError, match=match):
        pi.Pruner(model, X, target="element", metric="l1", objective={"name": "sparsity", "target": 0.5},
                  training=training)
    assert same_state(model, snapshot)


def test_slim_without_batchnorm_and_progressive_on_coupled_channels_are_refused(cnn, cnn_inputs):
    with pytest.raises(ConfigError, match="training.slim: .*no affine BatchNorm"):
        pi.Pruner(mlp(), X, target="channel", metric="l2", objective={"name": "flops", "target": 0.8},
                  training=["slim"])
    with pytest.raises(ConfigError, match="training.progressive: .*coupled groups"):
        pi.Pruner(cnn, cnn_inputs, target="channel", metric="l2", objective={"name": "flops", "target": 0.8},
                  training=["progressive"])


def test_training_list_round_trips_through_config(tmp_path):
    cfg = pi.PrunerConfig.from_dict({"target": "element", "metric": "l1", "objective": {"name": "sparsity", "target": 0.5},
                                     "training": [{"name": "group_lasso", "alpha": 0.01}]})
    path = tmp_path / "c.yaml"
    cfg.to_yaml(str(path))
    loaded = pi.PrunerConfig.from_file(path)
    assert loaded.training == [{"name": "group_lasso", "alpha": 0.01}]
    pruner = pi.Pruner.from_config(loaded, mlp(), X)
    assert pruner.training[0].alpha == 0.01
