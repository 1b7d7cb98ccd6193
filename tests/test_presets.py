import pytest
import torch
from conftest import ce_loss

import pruner_iface as pi
from pruner_iface.errors import ConfigError, UnknownNameError


def test_every_preset_is_a_valid_config_with_description():
    assert len(pi.presets.names()) >= 5
    for name in pi.presets.names():
        preset = pi.presets.get(name)
        assert preset.description and preset.origin
        pi.PrunerConfig.from_dict(preset.config)


def train_one_batch(pruner, model, batch, step=None):
    """One training step through the pruner's hooks (what a user's loop does)."""
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    pruner.on_step_begin(step)
    optimizer.zero_grad()
    ce_loss(model, batch).backward()
    pruner.on_before_optimizer_step()
    optimizer.step()
    pruner.on_after_optimizer_step()


@pytest.mark.parametrize("name", pi.presets.names())
def test_every_preset_prunes_the_test_cnn(name, cnn, cnn_inputs, cnn_batches):
    """Each preset on the test CNN, driven the way its original is: run() for one-shot and
    round-based presets (with evaluate for searches, a fine-tune calling the hooks for
    training-time mechanisms), the training-loop hooks for staged (progressive) pruning."""
    spec = pi.presets.resolve(name)
    target = spec["target"]["name"] if isinstance(spec["target"], dict) else spec["target"]
    overrides = {}
    if name in ("channel-flops", "demo"):
        overrides["exclude"] = ["fc2"]
    if target in ("block", "n:m"):  # the test CNN's conv1 (27 inputs) and fc2 (10 rows) fit no block
        overrides["include"] = ["fc1"]
    if name == "demo":  # the test CNN's 8-channel conv cannot keep a multiple of 8 and lose channels
        overrides["target"] = {"round_to": 1}
    if name in ("halp", "netadapt"):  # the latency table is tested in tests/objectives; schedule and search run here
        overrides.update(objective={"name": "flops", "target": 0.6}, group_size=1,
                         **({"pruning_steps": 3} if name == "halp" else {"resource_reduction": 0.1}))
    if name == "nni.amc":  # channels in multiples of 8: the test CNN's 8/16-channel convs allow little
        overrides["total_sparsity"] = 0.2
    if name == "nni.slim":  # only conv1's channels pass through a BatchNorm
        overrides.update(include=["conv1"], training_steps=0)
    staged = any(m == "progressive" or (isinstance(m, dict) and m["name"] == "progressive")
                 for m in spec.get("training", []))
    if staged:  # gradients are seen from step 0; sub-steps 1 apart (frequency 4)
        overrides.update(start_step=1, end_step=9, pruning_frequency=4)
    pruner = pi.Pruner.from_preset(name, cnn, cnn_inputs, **overrides)
    evaluate = (lambda m: -float(ce_loss(m, cnn_batches[0]))) if pruner.allocator.needs_evaluate else None
    if staged:
        pruner.on_train_begin()
        for step in range(pruner.plan[-1][0] + 1):
            train_one_batch(pruner, cnn, cnn_batches[step % len(cnn_batches)])
        pruner.on_train_end()
    else:
        per_step = any(m.hooks for m in pruner.training)
        fine_tune = (lambda m, step: train_one_batch(pruner, m, cnn_batches[0], step)) if per_step else None
        pruner.run(data=cnn_batches, loss_fn=ce_loss, evaluate=evaluate, fine_tune=fine_tune)
    value = pruner.objective.estimate(pruner.layers, [layer.current_pruned() for layer in pruner.layers])
    assert pruner.objective.achieved(value, pruner.objective.target)
    assert pruner.report.steps or pruner.objective.target == 0  # pattern lock prunes nothing more


def test_unknown_preset_and_override_are_errors():
    with pytest.raises(UnknownNameError, match="Did you mean 'snip'"):
        pi.presets.get("snp")
    with pytest.raises(ConfigError, match="neither an option of the preset nor a part"):
        pi.presets.resolve("snip", speed=True)


def test_override_merges_same_part_dict_and_replaces_otherwise():
    cfg = pi.presets.resolve("demo", objective=0.7, metric="l1", scheduler={"end": 5})
    assert cfg["objective"] == {"name": "flops", "target": 0.7}
    assert cfg["metric"] == "l1" and cfg["scheduler"] == {"name": "agp", "start": 0, "end": 5}
