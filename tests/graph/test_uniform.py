"""Uniform tensors (zeros/ones/full and *_like): they follow the channels they meet instead of
pinning them; shared ones keep their consumers' sizes equal; misuse pins."""
import warnings

import torch
from torch import nn

import pruner_iface as pi
from pruner_iface.graph import build_dependency_graph


def producers(graph):
    return {g.producers for g in graph.groups}


def prune_and_speed_up(model, x, amount=0.5):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pruner = pi.Pruner(model, (x,), target="channel", metric="l1", objective={"name": "sparsity", "target": amount})
        pruner.run()
    with torch.no_grad():
        masked = model(x)
    pruner.speed_up()
    with torch.no_grad():
        return masked, model(x)


class Likes(nn.Module):
    """Tensors shaped like an activation, or sized from it at run time, added to it."""

    def __init__(self):
        super().__init__()
        self.a, self.b, self.head = nn.Conv2d(3, 8, 3), nn.Conv2d(8, 8, 1), nn.Conv2d(8, 2, 1)

    def forward(self, x):
        h = self.a(x)
        extra = torch.zeros_like(h) + torch.ones_like(h) * 2 + torch.full_like(h, 0.5) + h.new_zeros(h.shape)
        bias = torch.full((1, h.shape[1], 1, 1), 0.25)
        return self.head(torch.relu(self.b(h) + extra) * bias)


def test_like_and_sized_factories_leave_every_channel_prunable_and_shrink_exactly():
    model, x = Likes().eval(), torch.randn(2, 3, 8, 8)
    graph = build_dependency_graph(model, (x,))
    assert not graph.warnings and len(graph.groups) == 8 and producers(graph) == {("a", "b")}
    masked, shrunk = prune_and_speed_up(model, x)
    assert model.a.out_channels == model.b.out_channels == 4 and model.head.in_channels == 4
    assert torch.allclose(masked, shrunk, atol=1e-5)


class SharedBias(nn.Module):
    """One zero bias, sized once, added to two independent branches."""

    def __init__(self):
        super().__init__()
        self.a, self.b, self.head = nn.Conv2d(3, 6, 1), nn.Conv2d(3, 6, 1), nn.Conv2d(12, 2, 1)

    def forward(self, x):
        ya = self.a(x)
        bias = torch.zeros(1, ya.shape[1], 1, 1)
        return self.head(torch.cat([ya + bias, self.b(x) + bias], 1))


def test_a_shared_uniform_tensor_joins_the_positions_of_all_its_consumers():
    model, x = SharedBias().eval(), torch.randn(2, 3, 4, 4)
    graph = build_dependency_graph(model, (x,))
    assert producers(graph) == {("a", "b")} and len(graph.groups) == 6
    masked, shrunk = prune_and_speed_up(model, x)
    assert model.a.out_channels == model.b.out_channels == 3
    assert torch.allclose(masked, shrunk, atol=1e-5)


def test_a_uniform_tensor_read_by_another_op_or_written_in_place_pins_the_channels_it_meets():
    class Counted(nn.Module):  # ones(...).sum() counts the channels: it must not shrink
        def __init__(self):
            super().__init__()
            self.a, self.head = nn.Conv2d(4, 4, 1), nn.Conv2d(4, 2, 1)

        def forward(self, x):
            ones = torch.ones(1, 4, 1, 1)
            return self.head((self.a(x) + ones) / ones.sum())

    class Sliced(nn.Module):  # a buffer filled through a view holds the input's values, not a fill value
        def __init__(self):
            super().__init__()
            self.a, self.head = nn.Conv2d(4, 4, 1), nn.Conv2d(4, 2, 1)

        def forward(self, x):
            buf = torch.zeros(x.shape[0], 4, x.shape[2], x.shape[3])
            buf[:, :3] = x[:, :3]
            return self.head(self.a(x) + buf)

    class Accumulated(nn.Module):  # an in-place update through a view makes it index-dependent
        def __init__(self):
            super().__init__()
            self.a, self.head = nn.Conv2d(4, 4, 1), nn.Conv2d(4, 2, 1)

        def forward(self, x):
            buf = torch.zeros(1, 4, 1, 1)
            buf.view(4).add_(torch.arange(4.0))
            return self.head(self.a(x) + buf)

    class MeetsInput(nn.Module):  # the same zeros also meets the input's channels, which cannot go
        def __init__(self):
            super().__init__()
            self.a, self.head, self.other = nn.Conv2d(4, 4, 1), nn.Conv2d(4, 2, 1), nn.Conv2d(4, 2, 1)

        def forward(self, x):
            zeros = torch.zeros(1, 4, 1, 1)
            return self.head(self.a(x) + zeros) + self.other(x + zeros)

    for model in (Counted(), Sliced(), Accumulated(), MeetsInput()):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            graph = build_dependency_graph(model.eval(), (torch.randn(1, 4, 4, 4),), warn=False)
        assert not any("a" in g.producers for g in graph.groups), type(model).__name__


def test_a_uniform_tensor_that_is_a_model_output_keeps_its_size():
    class Out(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(3, 4, 1), nn.Conv2d(4, 4, 1)

        def forward(self, x):
            zeros = torch.zeros(1, 4, 1, 1)
            return self.b(self.a(x) + zeros), zeros

    graph = build_dependency_graph(Out().eval(), (torch.randn(1, 3, 4, 4),), warn=False)
    assert not any("a" in g.producers for g in graph.groups)


def test_a_hard_coded_uniform_size_fails_speed_up_loudly_and_leaves_the_model_as_it_was():
    class HardCoded(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.head = nn.Conv2d(3, 8, 1), nn.Conv2d(8, 2, 1)

        def forward(self, x):
            return self.head(self.a(x) + torch.zeros(1, 8, 1, 1))

    model, x = HardCoded().eval(), torch.randn(1, 3, 4, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pruner = pi.Pruner(model, (x,), target="channel", metric="l1", objective={"name": "sparsity", "target": 0.5})
        pruner.run()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    try:
        pruner.speed_up()
    except pi.SpeedUpError as exc:
        assert "hard-codes a channel count" in str(exc)
    else:
        raise AssertionError("speed_up accepted a hard-coded size that no longer matches")
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
