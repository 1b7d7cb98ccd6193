import copy

import pytest
import torch
from conftest import same_state, state
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import pruner_iface as pi
from pruner_iface.errors import ConfigError, MissingDataError


def correlated_inputs(n, features, seed=0):
    """Inputs with a few strong directions, as real activations have (what OBS exploits)."""
    g = torch.Generator().manual_seed(seed)
    low = torch.randn(n, max(2, features // 4), generator=g) @ torch.randn(max(2, features // 4), features, generator=g)
    return low + 0.1 * torch.randn(n, features, generator=g)


def forward_loss(model, batch):
    return model(batch).sum()


def prune_linear(layer, x, training, target=None, sparsity=0.5, metric="l1"):
    model = nn.Sequential(layer)
    pruner = pi.Pruner(model, (x[:2],), target=target or "element", metric=metric,
                       objective={"name": "sparsity", "target": sparsity}, training=training)
    pruner.run(data=[x[i:i + 32] for i in range(0, len(x), 32)], loss_fn=forward_loss)
    return model[0]


def naive_obs(weight, x, pruned, damp):
    """SparseGPT's update for a fixed mask, from its definition: pruning w_q (columns in order)
    moves the row's remaining columns q.. by −w_q·[H_{q:,q:}⁻¹]_{0,:}/[H_{q:,q:}⁻¹]_00."""
    h = (x.T @ x).double()
    h += damp * torch.diagonal(h).mean() * torch.eye(h.shape[0], dtype=h.dtype)
    w = weight.double().clone()
    for q in range(w.shape[1]):
        inv = torch.linalg.inv(h[q:, q:])
        rows = pruned[:, q]
        w[rows, q:] -= w[rows, q:q + 1] / inv[0, 0] * inv[0].unsqueeze(0)
        w[rows, q] = 0
    return w


@pytest.mark.parametrize("block_size", [3, 128])
def test_fixed_mask_update_equals_sequential_obs_from_its_definition(block_size):
    torch.manual_seed(0)
    layer, x = nn.Linear(10, 6), correlated_inputs(96, 10)
    expected_mask = layer.weight.detach().abs() > layer.weight.detach().abs().flatten().median()
    dense = layer.weight.detach().clone()
    pruned = prune_linear(layer, x, [{"name": "sparsegpt", "adaptive": False, "block_size": block_size}])
    assert torch.equal(pruned.weight_mask, expected_mask)
    assert torch.allclose(pruned.weight.double(), naive_obs(dense, x, ~expected_mask, 0.01), atol=1e-5)


def output_error(layer, dense, x):
    with torch.no_grad():
        return float((layer(x) - dense(x)).pow(2).mean())


@pytest.mark.parametrize("target", ["element", {"name": "element", "scope": "row"}, {"name": "n:m", "n": 2, "m": 4}])
def test_sparsegpt_reconstructs_outputs_better_than_wanda_and_magnitude(target):
    torch.manual_seed(1)
    dense, x = nn.Linear(64, 32), correlated_inputs(256, 64)
    errors = {}
    for name, metric, training in (("l1", "l1", []), ("wanda", "wanda", []), ("sparsegpt", "l1", ["sparsegpt"])):
        pruned = prune_linear(copy.deepcopy(dense), x, training, target, metric=metric)
        assert float((pruned.weight == 0).float().mean()) >= 0.5
        errors[name] = output_error(pruned, dense, x)
    assert errors["sparsegpt"] < 0.5 * errors["wanda"] and errors["sparsegpt"] < errors["l1"]


@settings(max_examples=25, deadline=None)
@given(rows=st.integers(1, 12), cols=st.sampled_from([4, 8, 12, 20, 36]), block=st.integers(1, 16),
       sparsity=st.floats(0.05, 0.7), kind=st.sampled_from(["layer", "row", "2:4", "1:4"]), seed=st.integers(0, 99))
def test_adaptive_selection_keeps_the_allocation_counts_and_structure(rows, cols, block, sparsity, kind, seed):
    torch.manual_seed(seed)
    layer, x = nn.Linear(cols, rows), correlated_inputs(40, cols, seed)
    if kind in ("layer", "row"):
        target = {"name": "element", "scope": kind}
    else:
        n = int(kind[0])
        target, block = {"name": "n:m", "n": n, "m": 4}, 4 * block
        sparsity = min(sparsity, (4 - n) / 4)
    reference = copy.deepcopy(layer)
    plain = prune_linear(reference, x, [], target, sparsity)
    pruned = prune_linear(layer, x, [{"name": "sparsegpt", "block_size": block}], target, sparsity)
    keep = pruned.weight_mask
    assert int((~keep).sum()) == int((~plain.weight_mask).sum())  # as many as the allocation chose
    assert bool((pruned.weight[~keep] == 0).all())
    if kind == "row":
        assert len(set((~keep).sum(1).tolist())) == 1
    if kind == "layer":
        lost = (~keep).sum(0)  # per column; each block of columns loses its share of the layer's count
        starts = range(0, cols, block)
        shares = [int(lost[s:s + block].sum()) for s in starts]
        exact = [int((~plain.weight_mask).sum()) * min(block, cols - s) / cols for s in starts]
        assert all(abs(a - e) < 1 for a, e in zip(shares, exact))
    if kind in ("2:4", "1:4"):
        groups = keep.reshape(rows, -1, 4)
        pruned_groups = ~plain.weight_mask.reshape(rows, -1, 4).all(-1)
        assert torch.equal(~groups.all(-1), pruned_groups)
        assert bool((groups.sum(-1)[pruned_groups] == int(kind[0])).all())


def test_weights_pruned_by_an_earlier_step_stay_pruned():
    torch.manual_seed(2)
    layer, x = nn.Linear(24, 8), correlated_inputs(64, 24)
    prune_linear(layer, x, ["sparsegpt"], sparsity=0.3)
    first = layer.weight_mask.clone()
    plain = copy.deepcopy(layer)
    prune_linear(plain, x, [], sparsity=0.6)
    prune_linear(layer, x, ["sparsegpt"], sparsity=0.6)
    assert not bool((layer.weight_mask & ~first).any())
    assert int((~layer.weight_mask).sum()) == int((~plain.weight_mask).sum()) >= 0.6 * layer.weight.numel()
    assert bool((layer.weight[~layer.weight_mask] == 0).all())


def test_conv_layers_are_reconstructed():
    torch.manual_seed(4)
    dense = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1))  # 144 columns: two blocks of 128
    smooth = nn.functional.interpolate(torch.randn(64, 16, 3, 3), size=(8, 8), mode="bilinear")  # correlated patches
    x = smooth + 0.02 * torch.randn(64, 16, 8, 8)
    batches = [x[i:i + 16] for i in range(0, 64, 16)]
    errors = []
    for training in ([], ["sparsegpt"]):
        model = copy.deepcopy(dense)
        pi.Pruner(model, (x[:1],), target="element", metric="l1", objective={"name": "sparsity", "target": 0.5},
                  training=training).run(data=batches, loss_fn=forward_loss)
        errors.append(output_error(model, dense, x))
    assert errors[1] < 0.5 * errors[0]


@pytest.mark.parametrize("module, options, match", [
    (nn.Conv2d(4, 4, 3, groups=2), {}, "groups=2"),
    (nn.Embedding(10, 4), {}, "supported: Linear and Conv2d"),
    (nn.Linear(8, 4), {"block_size": 6, "target": {"name": "n:m", "n": 2, "m": 4}}, "multiple of m=4"),
    (nn.Linear(8, 4), {"target": {"name": "block", "block": [2, 2]}}, "adaptive=false"),
    (nn.Linear(8, 4), {"damp": -1}, "damp"),
])
def test_unsupported_layers_and_options_are_refused_before_anything_changes(module, options, match):
    model = nn.Sequential(module)
    before = state(model)
    target = options.pop("target", {"name": "element", "module_types": [type(module).__name__]})
    x = torch.randint(0, 10, (2, 3)) if isinstance(module, nn.Embedding) else torch.randn(2, 4, 5, 5) \
        if isinstance(module, nn.Conv2d) else torch.randn(2, 8)
    with pytest.raises(ConfigError, match=match):
        pi.Pruner(model, (x,), target=target, metric="l1", objective={"name": "sparsity", "target": 0.5},
                   training=[{"name": "sparsegpt", **options}])
    assert same_state(model, before)


def test_sparsegpt_needs_calibration_data_in_run_and_refuses_the_training_hooks():
    model = nn.Sequential(nn.Linear(8, 4))
    before = state(model)
    pruner = pi.Pruner(model, (torch.randn(2, 8),), target="element", metric="l1", objective={"name": "sparsity", "target": 0.5},
                       training=["sparsegpt"])
    with pytest.raises(MissingDataError, match="training mechanism 'sparsegpt'"):
        pruner.run()
    with pytest.raises(ConfigError, match="pruner.run\\(data=..., loss_fn=...\\)"):
        pruner.on_train_begin()
    assert same_state(model, before)


def test_sparsegpt_preset_options_reach_the_mechanism():
    cfg = pi.presets.resolve("sparsegpt", sparsity=0.6, blocksize=64, percdamp=0.05)
    assert cfg["objective"]["target"] == 0.6
    assert cfg["training"] == [{"name": "sparsegpt", "block_size": 64, "damp": 0.05}]
