import pytest
from conftest import ce_loss

import pruner_iface as pi
from pruner_iface.errors import ConfigError, UnknownNameError


def test_every_preset_is_a_valid_config_with_description():
    assert len(pi.presets.names()) >= 5
    for name in pi.presets.names():
        preset = pi.presets.get(name)
        assert preset.description and preset.origin
        pi.PrunerConfig.from_dict(preset.config)


@pytest.mark.parametrize("name", pi.presets.names())
def test_every_preset_prunes_the_test_cnn(name, cnn, cnn_inputs, cnn_batches):
    exclude = ["fc2"] if name in ("channel-flops", "demo") else None
    overrides = {"exclude": exclude} if exclude else {}
    if name.startswith("snip-momentum") or name == "nm-2:4":
        overrides["include"] = ["fc1"]
    if name == "demo":  # the test CNN's 8-channel conv cannot keep a multiple of 8 and lose channels
        overrides["target"] = {"round_to": 1}
    pruner = pi.Pruner.from_preset(name, cnn, cnn_inputs, **overrides)
    report = pruner.run(data=cnn_batches, loss_fn=ce_loss)
    assert report.steps and pruner.objective.achieved(report.steps[-1].objective_value, pruner.objective.target)


def test_unknown_preset_and_override_are_errors():
    with pytest.raises(UnknownNameError, match="Did you mean 'snip'"):
        pi.presets.get("snp")
    with pytest.raises(ConfigError, match="neither an option of the preset nor a part"):
        pi.presets.resolve("snip", speed=True)


def test_override_merges_same_part_dict_and_replaces_otherwise():
    cfg = pi.presets.resolve("demo", objective=0.7, metric="l1", scheduler={"end": 5})
    assert cfg["objective"] == {"name": "flops", "target": 0.7}
    assert cfg["metric"] == "l1" and cfg["scheduler"] == {"name": "agp", "start": 0, "end": 5}
