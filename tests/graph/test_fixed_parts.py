"""Slices, selections and constant indices along channels: a channel may go exactly when the same
code on the smaller tensor still picks the kept part of what it picked (checked against removing
each channel by hand), and pruning those channels gives masked == shrunk."""
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import pruner_iface as pi
from pruner_iface.graph import build_dependency_graph

C = 12


class Picks(nn.Module):
    """conv -> relu -> pick(channels) -> flatten -> linear."""

    def __init__(self, pick, features):
        super().__init__()
        self.conv, self.pick, self.fc = nn.Conv2d(3, C, 1), pick, nn.Linear(features, 4)

    def forward(self, x):
        return self.fc(torch.flatten(self.pick(F.relu(self.conv(x))), 1))


def removable(pick) -> set[int]:
    """Channels whose removal by hand leaves pick() equal to its old result without that channel."""
    ids = torch.arange(C, dtype=torch.float).reshape(1, C, 1, 1)
    out = pick(ids).flatten()
    found = set()
    for k in range(C):
        try:
            after = pick(torch.cat([ids[:, :k], ids[:, k + 1:]], 1)).flatten()
        except (IndexError, RuntimeError):  # the pick no longer fits the smaller tensor
            continue
        if after.shape == out[out != k].shape and torch.equal(after, out[out != k]):
            found.add(k)
    return found


def prunable(model, x) -> set[int]:
    graph = build_dependency_graph(model, (x,), warn=False)
    column = next(c for c in graph.columns if c.tensor == "conv.weight" and c.dim == 0)
    labels = {g.label for g in graph.groups}
    return {k for k, label in enumerate(column.labels.tolist()) if label in labels}


def bound():
    return st.one_of(st.none(), st.integers(-C - 2, C + 2))


PICKS = st.one_of(
    st.tuples(st.just("slice"), bound(), bound()),
    st.tuples(st.just("select"), st.integers(-C, C - 1)),
    st.tuples(st.just("narrow"), st.integers(-C, C - 1), st.integers(1, C)),
    st.tuples(st.just("index"), st.lists(st.integers(-C, C - 1), min_size=1, max_size=4)),
    st.tuples(st.just("index_select"), st.lists(st.integers(0, C - 1), min_size=1, max_size=4)),
)


def make_pick(spec):
    kind = spec[0]
    if kind == "slice":
        return lambda y: y[:, spec[1]:spec[2]]
    if kind == "select":
        return lambda y: y[:, spec[1]]
    if kind == "narrow":
        return lambda y: y.narrow(1, spec[1], min(spec[2], C - spec[1] if spec[1] >= 0 else -spec[1]))
    if kind == "index":
        return lambda y: y[:, spec[1]]
    return lambda y: y.index_select(1, torch.tensor(spec[1]))


@settings(max_examples=30, deadline=None)
@given(spec=PICKS, seed=st.integers(0, 3))
def test_channels_that_go_are_exactly_those_the_pick_still_finds(spec, seed):
    pick = make_pick(spec)
    x = torch.randn(2, 3, 3, 3)
    features = pick(torch.zeros(2, C, 3, 3)).flatten(1).shape[1]
    if features == 0:
        return  # an empty slice has nothing to couple
    torch.manual_seed(seed)
    model = Picks(pick, features).eval()
    expected = removable(pick)
    assert prunable(model, x) == expected
    if len(expected) < 2:
        return  # a layer keeps at least one of its groups
    pruner = pi.Pruner(model, (x,), target="channel", metric={"name": "random", "seed": seed},
                       objective={"name": "sparsity", "target": 0.5})
    pruner.run()
    with torch.no_grad():
        masked = model(x)
    pruner.speed_up()
    assert model.conv.out_channels < C
    with torch.no_grad():
        assert torch.allclose(model(x), masked, atol=1e-5)


class WrittenLinear(nn.Linear):
    """Falcon's FalconLinear: the product with the transposed weight written out."""

    def forward(self, x):
        return x @ self.weight.T + self.bias


def test_linear_written_as_a_product_with_the_transposed_weight_is_a_layer():
    model, x = nn.Sequential(WrittenLinear(8, 16), nn.ReLU(), WrittenLinear(16, 4)), torch.randn(5, 8)
    graph = build_dependency_graph(model, (x,), warn=False)
    assert len(graph.groups) == 16  # each hidden unit: a row of the first weight, a column of the second
    pruner = pi.Pruner(model, (x,), target="channel", metric="l1", objective={"name": "sparsity", "target": 0.5})
    pruner.run()
    with torch.no_grad():
        masked = model(x)
    pruner.speed_up()
    assert tuple(model[0].weight.shape) == (8, 8) and tuple(model[2].weight.shape) == (4, 8)
    with torch.no_grad():
        assert torch.allclose(model(x), masked, atol=1e-5)


def test_per_sample_pick_along_positions_keeps_every_channel_prunable():
    class Pooled(nn.Module):  # CLIP's pooled token: one position per sample, chosen from the data
        def __init__(self):
            super().__init__()
            self.up, self.down = nn.Linear(8, 16), nn.Linear(16, 4)

        def forward(self, tokens, ids):
            h = F.relu(self.up(tokens))
            return self.down(h[torch.arange(h.shape[0]), ids.argmax(-1)])

    model = Pooled()
    inputs = (torch.randn(2, 5, 8), torch.randint(0, 9, (2, 5)))
    graph = build_dependency_graph(model, inputs)
    assert len(graph.groups) == 16 and not graph.warnings


PADS = {
    "positions_of_channels_last": lambda y: F.pad(y.permute(0, 2, 3, 1), (0, 0, 1, 2)).permute(0, 3, 1, 2),
    "channels_with_zeros": lambda y: F.pad(y.permute(0, 2, 3, 1), (2, 1)).permute(0, 3, 1, 2),
    "no_op_over_every_dim": lambda y: F.pad(y.permute(0, 2, 3, 1), (0, 0, 0, 0, 0, 0)).permute(0, 3, 1, 2),
}


@pytest.mark.parametrize("case", list(PADS))
def test_constant_padding_keeps_every_channel_prunable(case):
    pick = PADS[case]
    x = torch.randn(2, 3, 3, 3)
    torch.manual_seed(0)
    model = Picks(pick, pick(torch.zeros(2, C, 3, 3)).flatten(1).shape[1]).eval()
    assert prunable(model, x) == set(range(C))
    pruner = pi.Pruner(model, (x,), target="channel", metric="l1", objective={"name": "sparsity", "target": 0.5})
    pruner.run()
    with torch.no_grad():
        masked = model(x)
    pruner.speed_up()
    assert model.conv.out_channels == C // 2
    with torch.no_grad():
        assert torch.allclose(model(x), masked, atol=1e-5)


def test_reflected_padding_over_channels_keeps_them():
    pick = lambda y: F.pad(y.permute(0, 2, 3, 1).reshape(2, 9, C), (1, 1), mode="reflect")  # noqa: E731
    model = Picks(pick, 9 * (C + 2)).eval()
    with pytest.warns(UserWarning, match="reflect"):
        graph = build_dependency_graph(model, (torch.randn(2, 3, 3, 3),))
    assert not graph.groups
