"""Property tests: requested ratios are met within one unit; every n:m group keeps exactly n."""
import math

import pytest
import torch
from conftest import same_state, state
from hypothesis import given, settings, strategies as st
from torch import nn

import pruner_iface as pi


def _build(kind, out_f, in_f, conv):
    module = nn.Conv2d(in_f, out_f, 3) if conv else nn.Linear(in_f, out_f)
    return nn.Sequential(module), (torch.randn(1, in_f, 5, 5) if conv else torch.randn(1, in_f),)


@settings(max_examples=40, deadline=None)
@given(
    kind=st.sampled_from(["element", "channel-local", "block"]),
    out_f=st.integers(2, 24), in_f=st.integers(1, 24), conv=st.booleans(),
    ratio=st.floats(0.0, 0.95), allocator=st.sampled_from(["uniform", "global"]),
)
def test_mask_sparsity_equals_requested_ratio_within_one_unit(kind, out_f, in_f, conv, ratio, allocator):
    model, inputs = _build(kind, out_f, in_f, conv)
    target = {"name": "block", "block": [2, 1], "remainder": "partial"} if kind == "block" else kind
    pruner = pi.Pruner(model, inputs, target=target, metric="l1", allocator=allocator,
                       objective={"name": "sparsity", "target": ratio})
    layer = pruner.layers[0]
    requested = ratio * layer.num_units
    if math.ceil(requested - 1e-9) > layer.max_units:  # would remove every unit: refused, model untouched
        before = state(model)
        with pytest.raises(pi.ObjectiveNotReachedError, match="cannot be reached"):
            pruner.run()
        assert same_state(model, before)
        return
    pruner.run()
    removed = int(layer.current_pruned().sum())
    assert abs(removed - requested) < 1.0
    assert removed <= layer.num_units - 1


@settings(max_examples=40, deadline=None)
@given(
    out_f=st.integers(1, 12), groups=st.integers(1, 6), m=st.sampled_from([2, 4, 8]),
    n_frac=st.floats(0.1, 0.9), conv=st.booleans(),
)
def test_every_nm_group_has_exactly_n_nonzeros(out_f, groups, m, n_frac, conv):
    n = min(max(1, int(round(n_frac * m))), m - 1)
    in_f = groups * m
    module = nn.Conv2d(in_f, out_f, 1) if conv else nn.Linear(in_f, out_f)
    inputs = (torch.randn(1, in_f, 3, 3) if conv else torch.randn(1, in_f),)
    model = nn.Sequential(module)
    with torch.no_grad():
        module.weight.add_(torch.sign(module.weight) * 1e-3)  # no exact zeros in the dense weight
    pruner = pi.Pruner(model, inputs, target={"name": "n:m", "n": n, "m": m}, metric="l1",
                       objective={"name": "sparsity", "target": (m - n) / m})
    pruner.run()
    groups_view = pruner.layers[0].group(module.weight.detach())
    assert torch.all((groups_view != 0).sum(-1) == n)
