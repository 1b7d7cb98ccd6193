"""nni.level / l1_norm / l2_norm / fpgm give the same masks as NNI 3.0's pruners on the same
model (skipped when nni is not installed; `make bench NAME=...` installs it)."""
import copy
import warnings

import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch import nn

import pruner_iface as pi

pruning = pytest.importorskip("nni.compression.pruning")


def make_model(widths, kind, seed):
    torch.manual_seed(seed)
    layers, last = [], 3
    for w in widths:
        layers += [nn.Linear(last, w) if kind == "linear" else nn.Conv2d(last, w, 3, padding=1), nn.ReLU()]
        last = w
    return nn.Sequential(*layers, nn.Flatten(), nn.LazyLinear(4) if kind == "conv" else nn.Linear(last, 4))


def example(kind):
    return (torch.randn(2, 3) if kind == "linear" else torch.randn(2, 3, 4, 4),)


@settings(max_examples=15, deadline=None)
@given(widths=st.lists(st.integers(2, 12), min_size=1, max_size=3), kind=st.sampled_from(["linear", "conv"]),
       ratio=st.floats(0.05, 0.9), seed=st.integers(0, 1000),
       pair=st.sampled_from([("nni.level", "LevelPruner"), ("nni.l1_norm", "L1NormPruner"),
                             ("nni.l2_norm", "L2NormPruner"), ("nni.fpgm", "FPGMPruner")]))
def test_masks_equal_nni(widths, kind, ratio, seed, pair):
    preset, pruner_name = pair
    model = make_model(widths, kind, seed)
    model(*example(kind))  # materialise the lazy head
    theirs = copy.deepcopy(model)
    op_types = ["Linear", "Conv2d"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, masks = getattr(pruning, pruner_name)(theirs, [{"op_types": op_types, "sparse_ratio": ratio}]).compress()
    pi.Pruner.from_preset(preset, model, example(kind), sparse_ratio=ratio).run()
    compared = 0
    for name, module in model.named_modules():
        if name not in masks:
            continue
        compared += 1
        expected = masks[name]["weight"].bool()
        got = getattr(module, "weight_mask", torch.ones_like(module.weight, dtype=torch.bool))
        assert torch.equal(got, expected), name
        if "bias" in masks[name] and preset != "nni.level":
            got_bias = getattr(module, "bias_mask", torch.ones_like(module.bias, dtype=torch.bool))
            assert torch.equal(got_bias, masks[name]["bias"].bool()), name
    assert compared == len(masks) == len(widths) + 1  # every Linear/Conv2d, the head included
