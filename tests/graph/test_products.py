"""Products of two activations without heads (a non-local block's scores and values, a 2-D
product): channel k of the left operand's last dim goes with row k of the right one, and the
product keeps the left's row and the right's column channels."""
import pytest
import torch
from conftest import shrinks_as_masked
from torch import nn

import pruner_iface as pi
from pruner_iface.graph import build_dependency_graph


class NonLocal(nn.Module):
    """Wang et al. 2018's embedded-Gaussian block; `scale` multiplies the scores by
    width ** -0.5 read from the tensor at run time."""

    def __init__(self, c=16, inner=8, scale=False):
        super().__init__()
        self.a = nn.Conv2d(3, c, 3, padding=1)
        self.theta, self.phi, self.g = (nn.Conv2d(c, inner, 1) for _ in range(3))
        self.out, self.head, self.scale = nn.Conv2d(inner, c, 1), nn.Linear(c, 3), scale

    def forward(self, x):
        x = torch.relu(self.a(x))
        b, _, h, w = x.shape
        theta = self.theta(x).flatten(2).transpose(1, 2)
        phi, g = self.phi(x).flatten(2), self.g(x).flatten(2).transpose(1, 2)
        scores = theta @ phi
        if self.scale:
            scores = scores * theta.shape[-1] ** -0.5
        y = (scores.softmax(-1) @ g).transpose(1, 2).reshape(b, -1, h, w)
        return self.head((x + self.out(y)).mean((2, 3)))


def producers(model, x):
    graph = build_dependency_graph(model, x)
    return sorted({tuple(sorted(group.producers)) for group in graph.groups})


def test_scores_pair_query_and_key_channels_and_values_pass_their_own():
    model, x = NonLocal().eval(), (torch.randn(2, 3, 6, 6),)
    assert producers(model, x) == [("a", "out"), ("g",), ("phi", "theta")]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_non_local_block_shrinks_as_masked(seed):
    torch.manual_seed(seed)
    model, x = NonLocal().eval(), (torch.randn(2, 3, 6, 6),)
    shrinks_as_masked(model, x, target="channel", metric={"name": "random", "seed": seed},
                      objective={"name": "sparsity", "target": 0.5})
    assert model.theta.out_channels == model.phi.out_channels < 8 and model.g.out_channels < 8
    assert model.out.in_channels == model.g.out_channels


def test_a_scale_read_from_the_width_is_caught_and_the_model_restored():
    torch.manual_seed(0)
    model, x = NonLocal(scale=True).eval(), (torch.randn(2, 3, 6, 6),)
    pruner = pi.Pruner(model, x, target="channel", metric="l1", include=["theta", "phi"],
                       objective={"name": "sparsity", "target": 0.5})
    pruner.run()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(pi.SpeedUpError, match="attention scale"):
        pruner.speed_up()
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


class Gram(nn.Module):
    """Two-dimensional products: (n, c) @ (c, m) with a computed right operand, and a Gram matrix
    whose rows and columns are both channels."""

    def __init__(self):
        super().__init__()
        self.a, self.b, self.c = nn.Linear(4, 6), nn.Linear(4, 6), nn.Linear(4, 5)

    def forward(self, x):
        mixed = self.a(x) @ self.b(x).t()      # (n, n): a's and b's features pair up
        gram = self.c(x).t() @ self.c(x)      # (5, 5): rows and columns are both c's features
        return mixed.sum(0) + gram.sum()


def test_two_dimensional_products_pair_features_and_keep_a_gram_whole():
    model, x = Gram().eval(), (torch.randn(3, 4),)
    assert ("a", "b") in producers(model, x) and ("c",) not in producers(model, x)
    shrinks_as_masked(model, x, target="channel", metric="l1", objective={"name": "sparsity", "target": 0.5})
    assert model.a.out_features == model.b.out_features == 3
