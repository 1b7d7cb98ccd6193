"""The channel target's speed-up check: with normalised (approximate) groups pruned it can only
bound the difference, so the rest of the pruning must still reproduce the masked model exactly."""
import pytest
import torch
from torch import nn

import pruner_iface as pi


class Block(nn.Module):
    """A residual MLP with LayerNorm: hidden width is normalised (approximate), the MLP's is not."""

    def __init__(self):
        super().__init__()
        self.inp, self.norm = nn.Linear(8, 16), nn.LayerNorm(16)
        self.up, self.down, self.out = nn.Linear(16, 32), nn.Linear(32, 16), nn.Linear(16, 4)

    def forward(self, x):
        h = self.inp(x)
        h = h + self.down(torch.relu(self.up(self.norm(h))))
        return self.out(h)


def pruned_block():
    torch.manual_seed(0)
    model, x = Block().eval(), torch.randn(6, 8)
    pruner = pi.Pruner(model, (x,), target="channel", metric="l1", objective={"name": "sparsity", "target": 0.4})
    pruner.run()
    kinds = {g.approximate for layer in pruner.layers for g, p in zip(layer.groups, layer.current_pruned()) if p}
    assert kinds == {True, False}  # both kinds pruned
    return model, x, pruner


def test_approximate_and_exact_groups_shrink_with_the_exact_part_matching():
    model, x, pruner = pruned_block()
    with pytest.warns(UserWarning, match="normalised together"):
        pruner.speed_up()
    assert model.up.out_features < 32 and model.inp.out_features < 16


def test_a_wrong_exact_coupling_is_refused_even_when_normalised_groups_cover_it():
    model, x, pruner = pruned_block()
    mlp = next(c for c in pruner.target.graph.columns if c.tensor == "down.weight" and c.dim == 1)
    mlp.labels.copy_(mlp.labels.flip(0))  # the consumer's columns now name the wrong neurons
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(pi.SpeedUpError, match="outside normalisations"):
        pruner.speed_up()
    after = model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
