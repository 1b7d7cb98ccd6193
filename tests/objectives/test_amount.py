"""The amount objective: torch.nn.utils.prune's amount of what is left, in one exact step."""
import pytest
import torch
from torch import nn

import pruner_iface as pi
from pruner_iface.errors import ConfigError


def test_amount_objective_needs_an_exact_allocator(cnn, cnn_inputs):
    with pytest.raises(ConfigError, match="'lamp' cannot; use 'uniform'"):
        pi.Pruner(cnn, cnn_inputs, target="element", metric="l1", allocator="lamp",
                  objective={"name": "amount", "target": 0.5})


def test_amount_objective_takes_one_step(cnn, cnn_inputs):
    with pytest.raises(ConfigError, match="'agp' plans 4 steps; use 'one-pass'"):
        pi.Pruner(cnn, cnn_inputs, target="element", metric="l1", scheduler={"name": "agp", "start": 0, "end": 3},
                  objective={"name": "amount", "target": 0.5})


@pytest.mark.parametrize("rounding,expected", [("round", 2), ("floor", 1)])
def test_rounding_follows_torch_or_nni(rounding, expected):
    lin = nn.Linear(1, 5)  # 5 rows at 0.3: torch prunes round(1.5) = 2, NNI int(1.5) = 1
    pi.Pruner(nn.Sequential(lin), (torch.randn(1, 1),), target="channel-local", metric="l1",
              objective={"name": "amount", "target": 0.3, "rounding": rounding}).run()
    assert int((~lin.weight_mask.any(1)).sum()) == expected


def test_bad_rounding_is_named():
    with pytest.raises(ConfigError, match="rounding.*'round' or 'floor'"):
        pi.OBJECTIVES.build({"name": "amount", "target": 0.3, "rounding": "ceil"})
