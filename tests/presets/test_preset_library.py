"""The presets of INC, ITREX, NNI's training-time and scheduled pruners, Torch-Pruning, jax_pruning,
HALP and the LLM one-shot methods: their option translation, their schedules against the
originals' formulas, and runs through the public API."""
import copy

import pytest
import torch
from conftest import same_state, state
from torch import nn

import pruner_iface as pi
from pruner_iface.config import PrunerConfig
from pruner_iface.errors import ConfigError


def mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 8))


X = (torch.randn(4, 16),)


@pytest.mark.parametrize("name", pi.presets.names())
def test_every_preset_resolves_to_a_valid_config_with_its_origin(name):
    preset = pi.presets.get(name)
    assert preset.origin and preset.description
    PrunerConfig.from_dict(pi.presets.resolve(name))


def plan(name, **options):
    return pi.Pruner.from_preset(name, mlp(), X, **options).plan


# reference test vectors (s_i = 0, s_f = 0.9, K = 10): k = 5 and k = 8
@pytest.mark.parametrize("decay, at5, at8", [("exp", 0.6838, 0.8415), ("cos", 0.2636, 0.6219),
                                             ("cube", 0.1125, 0.4608), ("linear", 0.45, 0.72)])
def test_inc_decay_types_follow_the_reference_vectors(decay, at5, at8):
    steps = dict(plan("inc.magnitude", pattern="1x1", start_step=0, end_step=10, sparsity_decay_type=decay))
    assert steps[5] == pytest.approx(at5, abs=1e-4) and steps[8] == pytest.approx(at8, abs=1e-4)
    assert list(steps) == list(range(11)) and steps[10] == 0.9


def test_inc_frequency_counts_steps_like_inc():
    # prune at start <= step <= end with (step - start) % frequency == 0
    assert [s for s, _ in plan("inc.magnitude", pattern="1x1", start_step=2, end_step=11, pruning_frequency=3)] == [2, 5, 8, 11]


def test_gradual_magnitude_follows_agp():
    steps = dict(pi.Pruner.from_preset("gradual-magnitude", mlp(), X, scheduler={"end": 10, "frequency": 1}).plan)
    assert steps[5] == pytest.approx(0.7875, abs=1e-4) and steps[8] == pytest.approx(0.8928, abs=1e-4)


@pytest.mark.parametrize("name, formula", [
    ("nni.linear", lambda i, n, s: i / n * s),
    ("nni.agp", lambda i, n, s: s * (1 - (1 - i / n) ** 3)),
    ("nni.lottery_ticket", lambda i, n, s: 1 - (1 - s) ** (i / n)),
])
def test_nni_scheduled_pruners_follow_nni_formulas(name, formula):
    steps = plan(name, total_times=4, interval_steps=5, sparse_ratio=0.8)
    assert [s for s, _ in steps] == [0, 5, 10, 15, 20]  # step 0 is the dense model: nothing pruned
    assert [v for _, v in steps[1:]] == pytest.approx([formula(i, 4, 0.8) for i in (1, 2, 3, 4)])


def test_itrex_schedule_is_linear_over_its_epoch_range():
    steps = plan("itrex.basic_magnitude", epoch_range=[1, 5], initial_sparsity_ratio=0.1, target_sparsity_ratio=0.9)
    assert [s for s, _ in steps] == [1, 2, 3, 4, 5]
    assert [v for _, v in steps] == pytest.approx([0.1, 0.3, 0.5, 0.7, 0.9])


def test_nni_movement_ramps_cubically_between_warm_up_and_cool_down():
    steps = dict(plan("nni.movement", warm_up_step=10, cool_down_beginning_step=20, sparse_ratio=0.9))
    assert min(steps) == 10 and max(steps) == 20
    assert steps[15] == pytest.approx(0.9 * (1 - 0.5 ** 3))


def test_halp_budget_decays_geometrically():
    resolved = pi.presets.resolve("halp", pruning_steps=4, objective={"name": "flops", "target": 0.5})
    steps = pi.Pruner.from_config(resolved, mlp(), X).plan
    assert [v for _, v in steps] == pytest.approx([0.5 ** (k / 4) for k in range(5)])


@pytest.mark.parametrize("pattern, target", [
    ("4x1", {"name": "block", "block": [4, 1]}), ("1x1", {"name": "element"}),
    ("2:4", {"name": "n:m", "n": 2, "m": 4}), ("1:4", {"name": "n:m", "n": 3, "m": 4}),
    ("channelx1", {"name": "channel-local", "dim": 0}), ("1xchannel", {"name": "channel-local", "dim": 1}),
])
def test_inc_patterns_translate_to_targets(pattern, target):
    assert pi.presets.resolve("inc.snip_momentum", pattern=pattern)["target"] == target


@pytest.mark.parametrize("pattern", ["4by1", "0x4", "4:4", "4:2", "channel"])
def test_inc_bad_pattern_is_refused_with_the_allowed_forms(pattern):
    with pytest.raises(ConfigError, match="pattern: .*allowed: 'NxM'"):
        pi.presets.resolve("inc.magnitude", pattern=pattern)


def test_inc_options_apply_in_the_presets_order_whatever_the_call_order():
    a = pi.presets.resolve("inc.snip", pruning_op_types=["Linear"], pattern="2:4", pruning_scope="local")
    b = pi.presets.resolve("inc.snip", pattern="2:4", pruning_scope="local", pruning_op_types=["Linear"])
    assert a == b
    assert a["target"] == {"name": "n:m", "n": 2, "m": 4, "module_types": ["Linear"]}
    assert a["allocator"] == {"name": "uniform", "max_ratio": 0.98}
    assert pi.presets.resolve("inc.gradient", pruning_op_types=["Conv"])["target"]["module_types"] == [
        "Conv1d", "Conv2d", "Conv3d"]


def test_inc_option_the_original_lacks_is_refused_with_the_list():
    with pytest.raises(ConfigError, match="'sparse_ratio'.*options of 'inc.magnitude': target_sparsity, pattern"):
        pi.presets.resolve("inc.magnitude", sparse_ratio=0.5)


def test_itrex_and_torch_pruning_translators():
    assert pi.presets.resolve("itrex.basic_magnitude", method="per_channel")["target"]["scope"] == "row"
    with pytest.raises(ConfigError, match="epoch_range"):
        pi.presets.resolve("itrex.basic_magnitude", epoch_range=[0])
    cfg = pi.presets.resolve("tp.group_l1", global_pruning=True, iterative_steps=3, pruning_ratio=0.4, round_to=4)
    assert cfg["allocator"]["name"] == "global" and cfg["scheduler"] == {"name": "linear", "rounds": 3}
    assert cfg["objective"]["target"] == 0.4 and cfg["target"] == {"name": "channel", "round_to": 4}
    with pytest.raises(ConfigError, match="global_pruning"):
        pi.presets.resolve("tp.group_l1", global_pruning="yes")


def test_training_option_reaches_the_mechanism():
    cfg = pi.presets.resolve("nni.slim", regular_scale=0.01)
    assert cfg["training"] == [{"name": "slim", "alpha": 0.01}]


# --- jax_pruning strategies (densities) ----------------------------------------------------
def test_jax_unstr_global_density_is_kept_fraction():
    pruner = pi.Pruner.from_preset("jax.strategy", mlp(), X,
                                   strategy={0: {"method": "unstr_global", "prune_rate_pattern": 0.3}})
    assert pruner.allocator.registered_name == "global"
    assert pruner.run().steps[-1].objective_value == pytest.approx(0.7, abs=2e-3)


def test_jax_epochs_become_a_table_schedule():
    pruner = pi.Pruner.from_preset("jax.strategy", mlp(), X, strategy={
        2: {"method": "unstr_unified_local", "prune_rate_pattern": 0.8},
        6: {"method": "unstr_unified_local", "prune_rate_pattern": 0.4}})
    assert [s for s, _ in pruner.plan] == [2, 6] and [v for _, v in pruner.plan] == pytest.approx([0.2, 0.6])
    assert pruner.allocator.registered_name == "uniform"


def test_jax_unstr_local_prunes_each_named_layer_to_its_density():
    model = mlp()
    report = pi.Pruner.from_preset("jax.strategy", model, X, strategy={
        0: {"method": "unstr_local", "prune_rate_pattern": {"0-kernel": 0.25, "2": 0.5}}}).run()
    assert {r.name: round(r.sparsity, 3) for r in report.layers} == {"0": 0.75, "2": 0.5}


def test_jax_str_unified_local_keeps_n_of_m():
    model = mlp()
    pi.Pruner.from_preset("jax.strategy", model, X,
                          strategy={0: {"method": "str_unified_local", "prune_rate_pattern": (2, 4)}}).run()
    kept = (model[0].weight != 0).reshape(32, 4, 4).sum(-1)
    assert torch.all(kept == 2)


@pytest.mark.parametrize("strategy, match", [
    ({0: {"method": "unstr_global", "prune_rate_pattern": 1.5}}, r"density must be in \(0, 1\]"),
    ({0: {"method": "unstr_global", "prune_rate_pattern": 0.5}, 1: {"method": "unstr_unified_local",
                                                                     "prune_rate_pattern": 0.4}}, "same method"),
    ({0: {"method": "str_global", "prune_rate_pattern": 0.5}}, "not one of unstr_global"),
    ({0: {"method": "str_unified_local", "prune_rate_pattern": 0.5}}, r"takes \(n, m\)"),
    ({0: {"method": "unstr_local", "prune_rate_pattern": 0.5}}, "layer name: density"),
    ({0: {"method": "unstr_global"}}, "must be {'method'"),
    ({}, "non-empty"),
])
def test_jax_bad_strategies_are_refused(strategy, match):
    with pytest.raises(ConfigError, match=match):
        pi.presets.resolve("jax.strategy", strategy=strategy)


# --- runs ------------------------------------------------------------------------------------
def train(pruner, model, steps, lr=0.05):
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(0)
    pruner.on_train_begin()
    for _ in range(steps):
        pruner.on_step_begin()
        optimizer.zero_grad()
        x = torch.randn(8, *X[0].shape[1:], generator=g)
        model(x).pow(2).mean().backward()
        pruner.on_before_optimizer_step()
        optimizer.step()
        pruner.on_after_optimizer_step()
    return pruner.on_train_end()


@pytest.mark.parametrize("name", ["inc.snip_momentum", "inc.snip_momentum_progressive", "inc.magnitude",
                                  "inc.gradient", "inc.snip", "inc.group_lasso"])
def test_inc_presets_reach_their_sparsity_in_a_training_loop(name):
    model = mlp()
    pruner = pi.Pruner.from_preset(name, model, X, target_sparsity=0.75, start_step=0, end_step=40,
                                   pruning_frequency=8)
    report = train(pruner, model, steps=48)
    assert report.steps[-1].objective_value >= 0.75
    units = pruner.layers[0].group(model[0].weight.detach() != 0)
    assert set(units.sum(-1).tolist()) <= {0, units.shape[1]}  # whole blocks pruned


def test_inc_pattern_lock_keeps_zeros_and_prunes_nothing_more():
    model = mlp()
    with torch.no_grad():
        model[2].weight[:, :10] = 0
    pruner = pi.Pruner.from_preset("inc.pattern_lock", model, X)
    train(pruner, model, steps=5)
    assert torch.count_nonzero(model[2].weight[:, :10]) == 0 and torch.count_nonzero(model[2].weight[:, 10:]) == 8 * 22
    assert torch.count_nonzero(model[0].weight) == model[0].weight.numel()


def test_nni_slim_trains_gamma_sparse_then_prunes_channels(cnn, cnn_inputs, cnn_batches):
    pruner = pi.Pruner.from_preset("nni.slim", cnn, cnn_inputs, sparse_ratio=0.25, regular_scale=1e-2,
                                   training_steps=3, include=["conv1"])  # conv1's channels pass through bn1
    with torch.no_grad():
        cnn.bn1.weight.copy_(torch.tensor([0.9, -0.3, 1.2, 0.1, -1.5, 0.7, 0.5, 1.1]))
    gamma = cnn.bn1.weight.detach().clone()
    optimizer = torch.optim.SGD(cnn.parameters(), lr=0.0)  # lr 0: only the penalty's gradient is checked
    pruner.on_train_begin()
    for batch in cnn_batches:  # sparse training, then the prune at step 3
        pruner.on_step_begin()
        optimizer.zero_grad()
        nn.functional.cross_entropy(cnn(batch[0]), batch[1]).backward()
        loss_grad = cnn.bn1.weight.grad.clone()
        pruner.on_before_optimizer_step()
        assert torch.allclose(cnn.bn1.weight.grad - loss_grad, 1e-2 * gamma.sign())
        optimizer.step()
        pruner.on_after_optimizer_step()
    assert not pruner.report.steps
    pruner.on_step_begin()
    report = pruner.on_train_end()
    assert report.steps[0].step == 3 and report.steps[0].objective_value >= 0.25
    pruned = cnn.bn1.weight_mask == 0
    assert pruned.nonzero().flatten().tolist() == [1, 3]  # the two smallest |γ|


@pytest.mark.parametrize("name", ["nni.apoz", "nni.mean_activation", "nni.taylor_fo", "tp.group_taylor",
                                  "tp.group_hessian", "tp.group_l1", "tp.lamp"])
def test_channel_presets_prune_and_speed_up_to_the_masked_function(name, cnn, cnn_inputs, cnn_batches):
    pruner = pi.Pruner.from_preset(name, cnn, cnn_inputs, **({"sparse_ratio": 0.25} if name.startswith("nni")
                                                             else {"pruning_ratio": 0.25}))
    report = pruner.run(data=cnn_batches, loss_fn=lambda m, b: nn.functional.cross_entropy(m(b[0]), b[1]))
    assert report.steps[-1].objective_value >= 0.25
    masked = cnn(*cnn_inputs)
    pruner.speed_up()
    assert torch.allclose(cnn(*cnn_inputs), masked, atol=1e-5)
    assert pi.count_params(cnn) < report.dense_params


def test_nni_linear_runs_its_rounds_with_the_chosen_algorithm():
    model = mlp()
    rounds = []
    report = pi.Pruner.from_preset("nni.linear", model, X, total_times=3, sparse_ratio=0.6,
                                   pruning_algorithm="l1").run(fine_tune=lambda m, step: rounds.append(step))
    assert rounds == [1, 2, 3]
    values = [s.objective_value for s in report.steps]
    assert all(v >= t - 1e-9 and v - t < 0.05 for v, t in zip(values, [0.2, 0.4, 0.6]))
    assert pruner_rows_pruned(model) == round(values[-1] * 40)


def pruner_rows_pruned(model):
    return int((model[0].weight.abs().sum(1) == 0).sum() + (model[2].weight.abs().sum(1) == 0).sum())


def test_wanda_prunes_half_of_every_row_by_weight_times_input_norm():
    model = mlp()
    data = [(torch.randn(8, 16) * torch.linspace(0.1, 3, 16),) for _ in range(2)]
    pi.Pruner.from_preset("wanda", model, X).run(data=data, loss_fn=lambda m, b: m(b[0]).sum())
    assert torch.all((model[0].weight != 0).sum(1) == 8) and torch.all((model[2].weight != 0).sum(1) == 16)


def test_llm_pruner_preset_prunes_mlp_neurons_of_a_llama():
    from hf_zoo import build

    model, inputs = build("llama")
    before = state(model)
    pruner = pi.Pruner.from_preset("llm_pruner", model, inputs, pruning_ratio=0.25)
    report = pruner.run(data=[inputs], loss_fn=lambda m, b: m(b[0], labels=b[0]).loss)
    assert report.steps[-1].objective_value >= 0.25
    masked = model(*inputs).logits
    pruner.speed_up()
    assert model.model.layers[0].mlp.up_proj.out_features == 36
    assert torch.allclose(model(*inputs).logits, masked, atol=1e-4)
    assert not same_state(model, before)


def lm_loss(model, batch):
    return model(batch[0], labels=batch[0]).loss


def test_flap_prunes_llama_mlp_neurons_unevenly_and_compensates_the_down_projections():
    from hf_zoo import build

    model, inputs = build("llama")
    data = [(torch.randint(0, 96, (4, 12), generator=torch.Generator().manual_seed(s)),) for s in range(2)]
    pruner = pi.Pruner.from_preset("flap", model, inputs, pruning_ratio=0.25)
    report = pruner.run(data=data, loss_fn=lm_loss)
    assert report.steps[-1].objective_value >= 0.25
    assert report.extra["bias_compensated_units"] == round(0.25 * 2 * 48)
    assert all(layer.mlp.down_proj.bias is not None for layer in model.model.layers)
    masked = model(*inputs).logits
    pruner.speed_up()
    assert torch.allclose(model(*inputs).logits, masked, atol=1e-4)
    widths = [layer.mlp.up_proj.out_features for layer in model.model.layers]
    assert sum(widths) == 2 * 48 - report.extra["bias_compensated_units"]


@pytest.mark.parametrize("name", ["sparsegpt", "sparsegpt-2:4"])
def test_sparsegpt_presets_prune_llama_linears_closer_to_dense_than_wanda(name):
    from hf_zoo import build

    model, inputs = build("llama")
    data = [(torch.randint(0, 96, (4, 16), generator=torch.Generator().manual_seed(s)),) for s in range(4)]
    held_out = torch.randint(0, 96, (8, 16), generator=torch.Generator().manual_seed(99))
    with torch.no_grad():
        dense = model(held_out).logits
    errors = {}
    for preset in (name, name.replace("sparsegpt", "wanda")):
        pruned = copy.deepcopy(model)
        pi.Pruner.from_preset(preset, pruned, inputs, exclude=["lm_head"]).run(data=data, loss_fn=lm_loss)
        linears = [m for n, m in pruned.named_modules() if isinstance(m, nn.Linear) and n != "lm_head"]
        assert sum(int((m.weight == 0).sum()) for m in linears) >= 0.5 * sum(m.weight.numel() for m in linears)
        with torch.no_grad():
            errors[preset] = float((pruned(held_out).logits - dense).pow(2).mean())
    assert errors[name] < errors[name.replace("sparsegpt", "wanda")]


def test_nni_amc_searches_layer_ratios_under_the_flops_budget(cnn, cnn_inputs):
    pruner = pi.Pruner.from_preset("nni.amc", cnn, cnn_inputs, total_sparsity=0.3,
                                   allocator={"stop_temperature": 80})
    report = pruner.run(evaluate=lambda m: -float(m(*cnn_inputs).abs().mean()))
    assert report.flops <= 0.7 * report.dense_flops + 1


def test_netadapt_preset_runs_its_greedy_rounds(cnn, cnn_inputs):
    pruner = pi.Pruner.from_preset("netadapt", cnn, cnn_inputs, resource_reduction=0.1, group_size=2,
                                   objective={"name": "flops", "target": 0.7})  # latency-table in real use
    report = pruner.run(evaluate=lambda m: -float((m(*cnn_inputs) - 1).abs().mean()))
    assert report.flops <= 0.7 * report.dense_flops + 1 and len(pruner.allocator.history) >= 2
