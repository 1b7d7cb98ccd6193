import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pruner_iface.graph import build_dependency_graph


def members_of(graph, producer):
    return [g for g in graph.groups if producer in g.producers]


def slices(group):
    return {(m.tensor, m.dim): m.indices.tolist() for m in group.members}


def test_residual_add_couples_both_producers_and_their_norms():
    class Res(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.bn_a = nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4)
            self.b, self.bn_b = nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4)
            self.head = nn.Conv2d(4, 2, 1)

        def forward(self, x):
            y = self.bn_a(self.a(x))
            return self.head(y + self.bn_b(self.b(y)))

    graph = build_dependency_graph(Res(), (torch.randn(1, 3, 4, 4),))
    group = graph.groups[0]
    assert group.producers == ("a", "b") and len(graph.groups) == 4
    s = slices(group)
    assert s[("a.weight", 0)] == [0] and s[("b.weight", 0)] == [0] and s[("b.weight", 1)] == [0]
    assert s[("bn_a.running_var", 0)] == [0] and s[("head.weight", 1)] == [0]


def test_concat_maps_offsets_and_flatten_expands_each_channel_to_hw_features():
    class Cat(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(1, 2, 1), nn.Conv2d(1, 3, 1)
            self.fc = nn.Linear(5 * 2 * 2, 4)

        def forward(self, x):
            return self.fc(torch.cat([self.a(x), self.b(x)], 1).flatten(1))

    graph = build_dependency_graph(Cat(), (torch.randn(1, 1, 2, 2),))
    second_of_b = members_of(graph, "b")[1]
    assert slices(second_of_b)[("fc.weight", 1)] == [12, 13, 14, 15]  # channel 2 + 1 of the concat


def test_depthwise_conv_couples_input_and_output_and_group_conv_keeps_groups_equal():
    model = nn.Sequential(nn.Conv2d(2, 8, 1), nn.Conv2d(8, 8, 3, groups=8), nn.Conv2d(8, 8, 1, groups=2),
                          nn.Conv2d(8, 2, 1))
    graph = build_dependency_graph(model, (torch.randn(1, 2, 5, 5),))
    first = members_of(graph, "0")[0]  # the grouped conv reads input j of both groups with one filter column
    assert slices(first)[("0.weight", 0)] == [0, 4] and slices(first)[("1.weight", 0)] == [0, 4]
    assert slices(first)[("2.weight", 1)] == [0]
    grouped = members_of(graph, "2")[1]
    assert slices(grouped)[("2.weight", 0)] == [1, 5] and slices(grouped)[("3.weight", 1)] == [1, 5]


def test_group_norm_makes_whole_groups_units():
    model = nn.Sequential(nn.Conv2d(1, 8, 1), nn.GroupNorm(2, 8), nn.Conv2d(8, 2, 1))
    graph = build_dependency_graph(model, (torch.randn(1, 1, 3, 3),))
    assert len(graph.groups) == 2 and slices(graph.groups[0])[("1.weight", 0)] == [0, 1, 2, 3]


def test_chunk_pieces_lose_the_same_positions():
    class Split(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(1, 4, 1), nn.Conv2d(2, 2, 1)

        def forward(self, x):
            p, q = self.a(x).chunk(2, 1)
            return self.b(p) + q

    graph = build_dependency_graph(Split(), (torch.randn(1, 1, 3, 3),))
    assert not graph.groups  # q flows to the output, so its channels and the pieces coupled to them stay


def test_model_outputs_never_change_shape():
    model = nn.Sequential(nn.Conv2d(1, 4, 1), nn.ReLU(), nn.Conv2d(4, 3, 1))
    graph = build_dependency_graph(model, (torch.randn(1, 1, 3, 3),))
    assert {g.producers for g in graph.groups} == {("0",)}


def test_a_module_called_again_after_another_is_named_once_among_the_producers():
    class Again(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.head = nn.Conv2d(4, 4, 1), nn.Conv2d(4, 4, 1), nn.Conv2d(4, 2, 1)

        def forward(self, x):
            return self.head(self.a(x) + self.b(x) + self.a(x * 2))

    graph = build_dependency_graph(Again(), (torch.randn(1, 4, 3, 3),))
    assert len(graph.groups) == 4 and {g.producers for g in graph.groups} == {("a", "b")}


def test_unknown_op_blocks_its_channels_and_warns_with_its_name():
    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(1, 4, 1), nn.Conv2d(4, 2, 1)

        def forward(self, x):
            return self.b(torch.cumsum(self.a(x), 1))

    with pytest.warns(UserWarning, match="cumsum"):
        graph = build_dependency_graph(Odd(), (torch.randn(1, 1, 3, 3),))
    assert graph.groups == []


def test_module_called_twice_and_pixel_shuffle_stay_consistent():
    import pruner_iface as pi

    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(2, 8, 1)
            self.shared = nn.Conv2d(8, 8, 3, padding=1)
            self.up = nn.Conv2d(8, 16, 1)
            self.out = nn.Conv2d(4, 2, 1)

        def forward(self, x):
            y = self.shared(F.relu(self.shared(self.stem(x))))
            return self.out(F.pixel_shuffle(self.up(y), 2))

    model = Twice().eval()
    x = torch.randn(1, 2, 4, 4)
    pruner = pi.Pruner(model, (x,), target="channel", metric="l1", objective={"name": "flops", "target": 0.6})
    pruner.run()
    masked = model(x)
    pruner.speed_up()
    assert torch.allclose(model(x), masked, atol=1e-5) and model(x).shape == (1, 2, 8, 8)
    assert model.shared.in_channels == model.shared.out_channels


def test_a_learned_scalar_or_a_weight_shared_across_heads_does_not_merge_what_it_multiplies():
    class Scaled(nn.Module):  # ReZero-style scalar gate on a residual branch
        def __init__(self):
            super().__init__()
            self.a, self.b, self.head = nn.Conv2d(3, 4, 1), nn.Conv2d(4, 4, 1), nn.Conv2d(4, 2, 1)
            self.alpha = nn.Parameter(torch.tensor(0.5))

        def forward(self, x):
            y = self.a(x)
            return self.head(y + self.alpha * self.b(y))

    class PerHeadNorm(nn.Module):  # attention with one RMS norm over head_dim shared by every head
        def __init__(self, heads=4, dim=8):
            super().__init__()
            self.heads, self.q, self.k, self.v = heads, nn.Linear(16, heads * dim), nn.Linear(16, heads * dim), \
                nn.Linear(16, heads * dim)
            self.norm_weight = nn.Parameter(torch.ones(dim))
            self.out = nn.Linear(heads * dim, 16)

        def norm(self, t):
            return self.norm_weight * (t * torch.rsqrt(t.pow(2).mean(-1, keepdim=True) + 1e-6))

        def forward(self, x):
            b, s, _ = x.shape
            q, k, v = (f(x).view(b, s, self.heads, -1).transpose(1, 2) for f in (self.q, self.k, self.v))
            attn = torch.softmax(self.norm(q) @ self.norm(k).transpose(-1, -2), -1) @ v
            return self.out(attn.transpose(1, 2).reshape(b, s, -1))

    graph = build_dependency_graph(Scaled(), (torch.randn(1, 3, 4, 4),))
    assert len([g for g in graph.groups if g.producers == ("a", "b")]) == 4
    graph = build_dependency_graph(PerHeadNorm(), (torch.randn(2, 5, 16),))
    heads = [g for g in graph.groups if g.attention]
    assert len(heads) == 4 and all(len(slices(g)[("q.weight", 0)]) == 8 for g in heads)
    assert not any(t == "norm_weight" for g in graph.groups for t, _ in slices(g))  # heads go whole; it stays
