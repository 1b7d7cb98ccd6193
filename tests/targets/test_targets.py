import pytest
import torch
from torch import nn

import pruner_iface as pi
from pruner_iface.errors import ConfigError
from pruner_iface.targets.base import from_matrix, matrix_view


def layer_of(target_spec, module):
    model = nn.Sequential(module)
    return pi.TARGETS.build(target_spec).bind(model)[0]


def keep_of(layer, pruned, scores=None, param="weight"):
    """The keep-mask a layer gives one of its own parameters."""
    return layer.masks(pruned, scores)[(layer.module, param)]


def test_matrix_view_of_conv_puts_input_channels_last_and_inverts():
    w = torch.randn(4, 3, 2, 5)
    m = matrix_view(w)
    assert m.shape == (4, 2 * 5 * 3)
    assert torch.equal(m[1, :3], w[1, :, 0, 0])  # consecutive columns are input channels
    assert torch.equal(from_matrix(m, w.shape), w)


def test_element_units_are_weights():
    layer = layer_of("element", nn.Linear(5, 3))
    assert layer.num_units == 15 and layer.counts_weights
    pruned = torch.zeros(15, dtype=torch.bool)
    pruned[[0, 7]] = True
    keep = keep_of(layer, pruned)
    assert keep.shape == (3, 5) and int((~keep).sum()) == 2 and not keep[1, 2]


def test_block_groups_n_rows_by_m_columns():
    layer = layer_of({"name": "block", "block": [2, 3]}, nn.Linear(6, 4))
    assert layer.num_units == (4 // 2) * (6 // 3)
    pruned = torch.zeros(layer.num_units, dtype=torch.bool)
    pruned[1] = True  # block row 0, block column 1
    keep = keep_of(layer, pruned)
    expected = torch.ones(4, 6, dtype=torch.bool)
    expected[0:2, 3:6] = False
    assert torch.equal(keep, expected)


def test_block_on_conv_runs_along_permuted_input_columns():
    conv = nn.Conv2d(4, 4, 1)
    layer = layer_of({"name": "block", "block": [1, 4]}, conv)
    pruned = torch.zeros(layer.num_units, dtype=torch.bool)
    pruned[2] = True
    keep = keep_of(layer, pruned)
    assert torch.equal(~keep[2, :, 0, 0], torch.ones(4, dtype=torch.bool))
    assert int((~keep).sum()) == 4


def test_block_scores_reduce_with_mean_sum_max():
    layer = layer_of({"name": "block", "block": [1, 2]}, nn.Linear(4, 1))
    scores = torch.tensor([[1.0, 3.0, 2.0, 2.0]])
    assert torch.equal(layer.unit_scores(scores, "sum"), torch.tensor([4.0, 4.0]))
    assert torch.equal(layer.unit_scores(scores, "mean"), torch.tensor([2.0, 2.0]))
    assert torch.equal(layer.unit_scores(scores, "max"), torch.tensor([3.0, 2.0]))


def test_block_that_does_not_divide_raises_naming_module():
    model = nn.Sequential(nn.Linear(6, 5))
    with pytest.raises(ConfigError, match=r"block 4x1 does not divide module '0'.*\[5, 6\]"):
        pi.TARGETS.build({"name": "block", "block": [4, 1]}).bind(model)


def test_block_partial_remainder_makes_smaller_edge_blocks():
    layer = layer_of({"name": "block", "block": [4, 1], "remainder": "partial"}, nn.Linear(2, 5))
    assert layer.num_units == 2 * 2
    assert layer.unit_weights.tolist() == [4, 4, 1, 1]
    keep = keep_of(layer, torch.tensor([False, False, True, False]))
    assert keep.shape == (5, 2) and not keep[4, 0] and int((~keep).sum()) == 1


def test_nm_units_are_groups_and_pruning_a_group_drops_m_minus_n_lowest():
    layer = layer_of({"name": "n:m", "n": 2, "m": 4}, nn.Linear(8, 1))
    scores = torch.tensor([[4.0, 1.0, 3.0, 2.0, 5.0, 6.0, 7.0, 8.0]])
    assert layer.num_units == 2 and layer.max_units == 2
    assert torch.equal(layer.unit_scores(scores, "sum"), torch.tensor([3.0, 11.0]))
    keep = keep_of(layer, torch.tensor([True, False]), [scores])
    assert keep.tolist() == [[True, False, True, False, True, True, True, True]]


def test_nm_rejects_bad_n_and_m_and_nondivisible_columns():
    with pytest.raises(ConfigError, match=r"target\.n: must satisfy 1 <= n < m"):
        pi.TARGETS.build({"name": "n:m", "n": 4, "m": 4}, "target")
    with pytest.raises(ConfigError, match="not a multiple of m=4"):
        pi.TARGETS.build({"name": "n:m", "n": 2, "m": 4}).bind(nn.Sequential(nn.Linear(6, 2)))


def test_channel_local_masks_rows_and_bias():
    layer = layer_of("channel-local", nn.Conv2d(2, 3, 3))
    pruned = torch.tensor([False, True, False])
    assert torch.equal(keep_of(layer, pruned, param="bias"), torch.tensor([True, False, True]))
    weight = keep_of(layer, pruned)
    assert not weight[1].any() and weight[[0, 2]].all()


def test_block_and_channel_targets_reject_unsupported_module_types():
    with pytest.raises(ConfigError, match="Embedding is not supported"):
        pi.TARGETS.build({"name": "channel-local", "module_types": ["Embedding"]}, "target")
    layer = layer_of({"name": "element", "module_types": ["Embedding"]}, nn.Embedding(5, 3))
    assert layer.num_units == 15


def test_unknown_module_type_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown module type 'Linaer'"):
        pi.TARGETS.build({"name": "element", "module_types": ["Linaer"]}, "target")


def test_per_layer_overrides_change_options_for_matching_modules():
    model = nn.Sequential(nn.Linear(8, 8), nn.Linear(8, 6))
    target = pi.TARGETS.build({"name": "block", "block": [4, 1], "overrides": {"1": {"block": [2, 2]}}})
    first, second = target.bind(model)
    assert first.block == (4, 1) and second.block == (2, 2)
    with pytest.raises(ConfigError, match="unknown option"):
        pi.TARGETS.build({"name": "block", "overrides": {"1": {"blokc": [2, 2]}}}, "target")


def test_include_pattern_matching_nothing_is_an_error():
    model = nn.Sequential(nn.Linear(8, 8))
    with pytest.raises(ConfigError, match="include pattern 'fc.*' matches no module"):
        pi.TARGETS.build("element").bind(model, include=["fc.*"])
    with pytest.raises(ConfigError, match="exclude pattern"):
        pi.TARGETS.build("element").bind(model, exclude=["nothing"])
    with pytest.raises(ConfigError, match="not a valid regular expression"):
        pi.TARGETS.build("element").bind(model, include=["(["])


def test_tied_weight_is_one_layer_and_masked_once():
    first, second = nn.Linear(6, 6), nn.Linear(6, 6)
    second.weight = first.weight
    model = nn.Sequential(first, nn.ReLU(), second)
    pruner = pi.Pruner(model, (torch.randn(2, 6),), target="element", metric="l1",
                       objective={"name": "sparsity", "target": 0.5})
    assert [layer.name for layer in pruner.layers] == ["0"]
    pruner.run()
    assert int((model[2].weight == 0).sum()) == 18 and pi.count_params(model) == 36 - 18 + 6 + 6


def test_computed_weights_are_refused():
    model = nn.Sequential(nn.utils.parametrizations.weight_norm(nn.Linear(4, 4)))
    with pytest.raises(ConfigError, match="module '0': its weight is computed"):
        pi.TARGETS.build("element").bind(model)


def test_bare_layer_and_empty_include_get_clear_errors():
    with pytest.raises(ConfigError, match="root module itself is not a candidate"):
        pi.TARGETS.build("element").bind(nn.Linear(4, 4))
    with pytest.raises(ConfigError, match="include: an empty list matches nothing"):
        pi.TARGETS.build("element").bind(nn.Sequential(nn.Linear(4, 4)), include=[])
