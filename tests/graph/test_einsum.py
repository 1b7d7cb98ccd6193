"""Two-operand einsum is coupled as the product it writes: heads along shared letters, channel
pairs along summed letters; anything else keeps its channels with a warning."""
import pytest
import torch
from conftest import shrinks_as_masked
from torch import nn

from pruner_iface.graph import build_dependency_graph
from pruner_iface.graph.einsum import parse


@pytest.mark.parametrize("equation,ranks,expected", [
    ("bhdn,bhdm->bhnm", [4, 4], (["bhdn", "bhdm"], "bhnm")),
    ("ij,jk", [2, 2], (["ij", "jk"], "ik")),                      # implicit output: letters seen once
    ("...ij,...jk->...ik", [4, 3], (["abij", "bjk"], "abik")),    # ellipsis spelled out, right-aligned
    (" b i d , b j d -> b i j ", [3, 3], (["bid", "bjd"], "bij")),
    ("ii,ij->j", [2, 2], None),                                     # a diagonal
    ("ij,jk->il", [2, 2], None),                                    # an output letter no operand has
])
def test_equations_are_read_with_ellipses_and_implicit_outputs(equation, ranks, expected):
    assert parse(equation, ranks) == expected


class EinsumAttention(nn.Module):
    """Multi-head self-attention over a feature map written with einsum; `self.heads` is updated
    by speed-up like num_heads."""

    def __init__(self, c=16, heads=4, mode="heads"):
        super().__init__()
        self.stem, self.qkv, self.proj = nn.Conv2d(3, c, 3, padding=1), nn.Conv2d(c, 3 * c, 1), nn.Conv2d(c, c, 1)
        self.heads, self.mode, self.head = heads, mode, nn.Linear(c, 3)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        b, c, h, w = x.shape
        if self.mode == "heads":
            q, k, v = self.qkv(x).reshape(b, 3, self.heads, -1, h * w).unbind(1)
            scores = torch.einsum("bhdn,bhdm->bhnm", q, k).softmax(-1)
            y = torch.einsum("bhnm,bhdm->bhdn", scores, v).reshape(b, -1, h, w)
        else:  # one head over all channels, with an ellipsis for the batch
            q, k, v = self.qkv(x).flatten(2).chunk(3, 1)
            scores = torch.einsum("...cn,...cm->...nm", q, k).softmax(-1)
            y = torch.einsum("bnm,bcm->bcn", scores, v).reshape(b, -1, h, w)
        return self.head((x + self.proj(y)).mean((2, 3)))


@pytest.mark.parametrize("mode", ["heads", "single"])
@pytest.mark.parametrize("seed", [0, 1])
def test_einsum_attention_shrinks_as_masked(mode, seed):
    torch.manual_seed(seed)
    model, x = EinsumAttention(mode=mode).eval(), (torch.randn(2, 3, 5, 5),)
    shrinks_as_masked(model, x, target="channel", metric={"name": "random", "seed": seed},
                      objective={"name": "sparsity", "target": 0.5})
    assert model.qkv.out_channels < 48
    if mode == "heads":
        assert model.heads == model.qkv.out_channels // 12 < 4


def test_heads_written_with_einsum_are_head_target_units():
    model, x = EinsumAttention().eval(), (torch.randn(2, 3, 5, 5),)
    pruner = shrinks_as_masked(model, x, target="head", metric="l1", objective={"name": "sparsity", "target": 0.5})
    assert [layer.num_units for layer in pruner.layers] == [4]
    assert model.heads == 2 and model.qkv.out_channels == 24


class ThreeWay(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b, self.c, self.out = nn.Linear(4, 6), nn.Linear(4, 6), nn.Linear(4, 6), nn.Linear(6, 2)

    def forward(self, x):
        return self.out(torch.einsum("nc,nc,nc->nc", self.a(x), self.b(x), self.c(x)))


def test_einsum_of_three_operands_keeps_its_channels_with_a_warning():
    with pytest.warns(UserWarning, match="einsum 'nc,nc,nc->nc' .* not understood"):
        graph = build_dependency_graph(ThreeWay().eval(), (torch.randn(3, 4),))
    assert not any({"a", "b", "c"} & set(group.producers) for group in graph.groups)


class Broadcast(nn.Module):
    """einsum over features with the left operand's batch of one broadcast against the right's."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(4, 6), nn.Linear(4, 6)

    def forward(self, x, y):
        return torch.einsum("bnc,bmc->bnm", self.b(y), self.a(x)).sum((1, 2))


def test_einsum_broadcasting_a_batch_of_one_pairs_the_features():
    model, x = Broadcast().eval(), (torch.randn(1, 5, 4), torch.randn(2, 3, 4))
    shrinks_as_masked(model, x, target="channel", metric="l1", objective={"name": "sparsity", "target": 0.5})
    assert model.a.out_features == model.b.out_features == 3
