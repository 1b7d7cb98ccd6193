import math

import pytest
import torch
from conftest import KwargModel, ce_loss, same_state, state
from torch import nn

import pruner_iface as pi
from pruner_iface.errors import ConfigError, InputError, MissingDataError, ObjectiveNotReachedError
from pruner_iface.masks import masked_params


def test_run_masks_in_place_and_reports(cnn, cnn_inputs):
    pruner = pi.Pruner(cnn, cnn_inputs, target="element", metric="l1", allocator="global",
                       objective={"name": "sparsity", "target": 0.6})
    report = pruner.run()
    masked = [name for name, _, param, _ in masked_params(cnn) if param == "weight"]
    total = sum(r.total for r in report.layers)
    removed = total - sum(r.kept for r in report.layers)
    assert removed == math.ceil(0.6 * total)
    assert report.steps[0].objective_value >= 0.6
    assert report.params == pi.count_params(cnn) < report.dense_params
    assert sorted(masked) == ["conv1", "conv2", "fc1", "fc2"]
    assert sorted(r.name for r in report.layers) == sorted(masked)


def test_flops_objective_is_met_and_count_flops_agrees(cnn, cnn_inputs):
    pruner = pi.Pruner(cnn, cnn_inputs, target="channel-local", metric="l2",
                       objective={"name": "flops", "target": 0.6}, exclude=["fc2"])
    report = pruner.run()
    flops = pi.count_flops(cnn, cnn_inputs)
    assert flops == report.flops and flops <= 0.6 * report.dense_flops + 1


def test_params_objective_is_met(cnn, cnn_inputs):
    report = pi.Pruner(cnn, cnn_inputs, target={"name": "block", "block": [2, 1]}, metric="l1",
                       allocator="global", objective={"name": "params", "target": 0.7}).run()
    assert report.params <= 0.7 * report.dense_params + 1


def test_multi_step_schedule_prunes_progressively_with_fine_tune_and_evaluate(cnn, cnn_inputs):
    calls = []
    report = pi.Pruner(cnn, cnn_inputs, target="element", metric="l1",
                       scheduler={"name": "agp", "start": 0, "end": 3},
                       objective={"name": "sparsity", "target": 0.8}).run(
        fine_tune=lambda m, step: calls.append(step), evaluate=lambda m: 0.5)
    values = [s.objective_value for s in report.steps]
    assert values == sorted(values) and values[-1] >= 0.8
    assert calls == [1, 2, 3]  # step 0 of AGP is the dense value: nothing to prune or fine-tune
    assert report.dense_evaluation == 0.5 and report.evaluation == 0.5


def test_masks_only_grow_across_steps(cnn, cnn_inputs):
    pruner = pi.Pruner(cnn, cnn_inputs, target="element", metric={"name": "random", "seed": 1},
                       scheduler={"name": "linear", "start": 0, "end": 2},
                       objective={"name": "sparsity", "target": 0.6})
    seen = []
    pruner.run(fine_tune=lambda m, s: seen.append(cnn.fc1.weight_mask.clone()))
    assert torch.all(seen[0] >= seen[1])


def test_gradient_metric_runs_with_data(cnn, cnn_inputs, cnn_batches):
    report = pi.Pruner(cnn, cnn_inputs, target="element", metric="taylor", allocator="global",
                       objective={"name": "sparsity", "target": 0.5}).run(data=cnn_batches, loss_fn=ce_loss)
    assert report.steps[-1].objective_value >= 0.5


def test_keyword_example_inputs_are_supported():
    model = KwargModel()
    inputs = {"features": torch.randn(2, 12), "scale": torch.tensor(2.0)}
    report = pi.Pruner(model, inputs, target="channel-local", metric="l1",
                       objective={"name": "flops", "target": 0.7}, include=["proj"]).run()
    assert report.flops <= 0.7 * report.dense_flops + 1


# ---------------------------------------------------------------- bad input leaves the model untouched
def bad_cases():
    sparsity = {"name": "sparsity", "target": 0.5}
    return {
        "unknown part": (dict(target="elemnt", metric="l1", objective=sparsity), ConfigError, "Did you mean 'element'"),
        "ratio out of range": (dict(target="element", metric="l1", objective={"name": "sparsity", "target": 1.2}),
                               ConfigError, r"objective\.target"),
        "non-divisible block": (dict(target={"name": "block", "block": [3, 1]}, metric="l1", objective=sparsity),
                                ConfigError, "does not divide module 'conv1'"),
        "include matches nothing": (dict(target="element", metric="l1", objective=sparsity, include=["layer9"]),
                                    ConfigError, "include pattern 'layer9'"),
        "nm above n/m": (dict(target={"name": "n:m", "n": 2, "m": 4}, metric="l1",
                              objective={"name": "sparsity", "target": 0.7}, include=["fc.*"]),
                         ConfigError, r"above the most the 'n:m' target can remove \(0.5"),
    }


@pytest.mark.parametrize("case", list(bad_cases()))
def test_bad_configuration_is_a_clear_error_and_model_untouched(case, cnn, cnn_inputs):
    kwargs, exc, pattern = bad_cases()[case]
    before = state(cnn)
    with pytest.raises(exc, match=pattern):
        pi.Pruner(cnn, cnn_inputs, **kwargs).run()
    assert same_state(cnn, before)


def test_wrong_example_inputs_name_the_problem(cnn):
    with pytest.raises(InputError, match=r"failed on example_inputs \(Tensor\(2, 5, 8, 8\)\)"):
        pi.Pruner(cnn, (torch.randn(2, 5, 8, 8),), target="element", metric="l1",
                  objective={"name": "sparsity", "target": 0.5})
    with pytest.raises(InputError, match="tuple of positional tensors or a dict"):
        pi.Pruner(cnn, 3, target="element", metric="l1", objective={"name": "sparsity", "target": 0.5})


@pytest.mark.parametrize("metric,target", [("snip", "element"), ("wanda", "element"), ("hessian", "element"),
                                           ("apoz", "channel"), ("activation_norm", "channel")])
def test_metric_needing_data_without_data_fails_before_any_change(metric, target, cnn, cnn_inputs):
    before = state(cnn)
    pruner = pi.Pruner(cnn, cnn_inputs, target=target, metric=metric, objective={"name": "sparsity", "target": 0.5})
    with pytest.raises(MissingDataError, match=f"metric '{metric}' learns from data"):
        pruner.run()
    assert same_state(cnn, before)


def test_unreachable_final_objective_fails_before_the_first_step(cnn, cnn_inputs):
    pruner = pi.Pruner(cnn, cnn_inputs, target="element", metric="l1",
                       allocator={"name": "uniform", "max_ratio": 0.5},
                       scheduler={"name": "table", "table": {0: 0.3, 1: 0.8}},
                       objective={"name": "sparsity", "target": 0.8})
    before, calls = state(cnn), []
    with pytest.raises(ObjectiveNotReachedError, match=r"0.8 cannot be reached.*gives sparsity 0.5; nothing was pruned"):
        pruner.run(fine_tune=lambda m, s: calls.append(s))
    assert calls == [] and same_state(cnn, before)
    with pytest.raises(ObjectiveNotReachedError):
        pruner.on_train_begin()


def test_unreachable_step_in_search_leaves_model_as_before_that_step(cnn, cnn_inputs):
    pruner = pi.Pruner(cnn, cnn_inputs, target="element", metric="l1",
                       scheduler={"name": "table", "table": {0: 0.3, 1: 0.6}},
                       objective={"name": "sparsity", "target": 0.6})
    snapshots = []

    def fine_tune(model, step):  # after step 0, cap the allocator below the next step's value
        snapshots.append(state(model))
        pruner.allocator = pi.ALLOCATORS.build({"name": "uniform", "max_ratio": 0.4})

    with pytest.raises(ObjectiveNotReachedError, match=r"0.6 cannot be reached.*left as it was before this step"):
        pruner.run(fine_tune=fine_tune)
    assert len(snapshots) == 1 and same_state(cnn, snapshots[0])


def test_bad_callback_is_rejected(cnn, cnn_inputs):
    pruner = pi.Pruner(cnn, cnn_inputs, target="element", metric="l1", objective={"name": "sparsity", "target": 0.5})
    with pytest.raises(InputError, match="fine_tune must be callable"):
        pruner.run(fine_tune=3)


# ---------------------------------------------------------------- training-loop hooks
def test_training_hooks_drive_step_schedule_with_snip_momentum(cnn, cnn_inputs, cnn_batches):
    pruner = pi.Pruner(cnn, cnn_inputs, target={"name": "block", "block": [2, 1]}, metric="snip_momentum",
                       allocator="global", scheduler={"name": "decay", "curve": "exp", "start": 0, "end": 6, "frequency": 2},
                       objective={"name": "sparsity", "target": 0.75})
    opt = torch.optim.SGD(cnn.parameters(), lr=0.01, momentum=0.9)
    pruner.on_train_begin()
    sparsities = []
    for step in range(8):
        x, y = cnn_batches[step % 3]
        pruner.on_step_begin()
        opt.zero_grad()
        ce_loss(cnn, (x, y)).backward()
        pruner.on_before_optimizer_step()
        opt.step()
        pruner.on_after_optimizer_step()
        sparsities.append(float((cnn.fc1.weight == 0).float().mean()))
    report = pruner.on_train_end()
    assert [s.step for s in report.steps] == [2, 4, 6]
    assert report.steps[-1].objective_value >= 0.75
    assert sparsities == sorted(sparsities)


def test_on_train_end_warns_about_steps_never_reached(cnn, cnn_inputs):
    pruner = pi.Pruner(cnn, cnn_inputs, target="element", metric="l1",
                       scheduler={"name": "linear", "start": 0, "end": 10, "frequency": 5},
                       objective={"name": "sparsity", "target": 0.5})
    pruner.on_train_begin()
    for _ in range(6):
        pruner.on_step_begin()
        pruner.on_after_optimizer_step()
    with pytest.warns(UserWarning, match=r"before pruning steps \[10\]"):
        report = pruner.on_train_end()
    assert report.extra["missed_steps"] == [10]


def test_hooks_with_gradient_metric_but_no_backward_fail_clearly(cnn, cnn_inputs):
    pruner = pi.Pruner(cnn, cnn_inputs, target="element", metric="gradient",
                       scheduler={"name": "linear", "start": 0, "end": 1},
                       objective={"name": "sparsity", "target": 0.5})
    pruner.on_train_begin()
    pruner.on_step_begin()  # step 0 is the dense value: nothing to score
    pruner.on_after_optimizer_step()
    with pytest.raises(InputError, match="call on_before_optimizer_step"):
        pruner.on_step_begin()


# ---------------------------------------------------------------- presets and configs
def test_from_preset_with_overrides(cnn, cnn_inputs):
    pruner = pi.Pruner.from_preset("magnitude-global", cnn, cnn_inputs, objective={"target": 0.3})
    assert pruner.objective.target == 0.3 and pruner.allocator.registered_name == "global"
    assert pruner.run().steps[-1].objective_value >= 0.3


def test_from_config_file(tmp_path, cnn, cnn_inputs):
    path = tmp_path / "cfg.yaml"
    path.write_text("target: channel-local\nmetric: l2\nobjective: {name: flops, target: 0.8}\nexclude: [fc2]\n")
    report = pi.Pruner.from_config(str(path), cnn, cnn_inputs).run()
    assert report.flops <= 0.8 * report.dense_flops + 1


# ---------------------------------------------------------------- speed-up
def test_speed_up_unstructured_target_is_refused_and_model_kept(cnn, cnn_inputs):
    pruner = pi.Pruner(cnn, cnn_inputs, target="element", metric="l1", objective={"name": "sparsity", "target": 0.5})
    pruner.run()
    before = state(cnn)
    with pytest.raises(pi.SpeedUpError, match="target 'element' is not structured"):
        pruner.speed_up()
    assert same_state(cnn, before)


def test_pruner_refuses_to_run_after_speed_up(cnn, cnn_inputs):
    pruner = pi.Pruner(cnn, cnn_inputs, target="channel-local", metric="l1",
                       objective={"name": "sparsity", "target": 0.5}, exclude=["fc2"])
    pruner.run()
    pruner.speed_up()
    with pytest.raises(pi.PrunerError, match="already sped up"):
        pruner.run()


def test_a_second_pruner_keeps_the_first_pruners_zeros(cnn, cnn_inputs):
    pi.Pruner(cnn, cnn_inputs, target="element", metric="l1", objective={"name": "sparsity", "target": 0.5}).run()
    zeros_before = cnn.fc1.weight == 0
    pi.Pruner(cnn, cnn_inputs, target="channel-local", metric="l1", objective={"name": "sparsity", "target": 0.25},
              exclude=["fc2"]).run()
    assert torch.all(cnn.fc1.weight[zeros_before] == 0) and torch.all(cnn.fc1.weight_mask[zeros_before] == 0)


def test_two_calibration_mechanisms_are_refused_before_anything_changes():
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 4))
    before = state(model)
    with pytest.raises(ConfigError, match=r"2 calibration mechanisms \(bias_compensation, least_squares\).*keep one"):
        pi.Pruner(model, (torch.randn(2, 5),), target="channel", metric="l2",
                  objective={"name": "sparsity", "target": 0.3}, training=["bias_compensation", "least_squares"])
    assert same_state(model, before)
