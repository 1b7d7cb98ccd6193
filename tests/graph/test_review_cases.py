"""Patterns that once mis-pruned or broke speed-up: each must now either prune correctly
(masked == shrunk) or keep the affected channels, never a silent mismatch."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import pruner_iface as pi


class Two(nn.Module):
    """c2(op(relu(c1(x)))) with 16 channels in between."""

    def __init__(self, op, c_mid=16, c_out=4):
        super().__init__()
        self.c1, self.c2, self.op = nn.Conv2d(3, 16, 3, padding=1), nn.Conv2d(c_mid, c_out, 1), op

    def forward(self, x):
        return self.c2(self.op(F.relu(self.c1(x))))


class Shuffle(nn.Module):
    def forward(self, y):
        return nn.functional.channel_shuffle(y, 4)


CASES = {
    "roll": lambda: Two(lambda y: torch.roll(y, 3, 1)),
    "channel_shuffle": lambda: Two(Shuffle()),
    "stack": lambda: Two(lambda y: torch.stack([y, y * 2], 2).flatten(1, 2), c_mid=32),
    "cat_on_height": lambda: Two(lambda y: torch.cat([y, -y], 2)),
    "group_norm_no_affine": lambda: Two(nn.GroupNorm(4, 16, affine=False)),
    "functional_group_norm": lambda: Two(lambda y: F.group_norm(y, 4)),
    "split_fixed": lambda: Two(lambda y: torch.cat(list(y.split(8, 1)), 1)),
    "negative_slice": lambda: Two(lambda y: y[:, -8:], c_mid=8),
    "rms_norm": lambda: Two(lambda y: nn.functional.rms_norm(y.permute(0, 2, 3, 1), (16,)).permute(0, 3, 1, 2)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_pattern_prunes_correctly_or_keeps_its_channels(case):
    torch.manual_seed(0)
    model = CASES[case]().eval()
    x = torch.randn(2, 3, 6, 6)
    try:
        pruner = pi.Pruner(model, (x,), target="channel", metric="l1", objective={"name": "sparsity", "target": 0.5})
    except pi.ConfigError as exc:
        assert "no prunable channel group" in str(exc)
        return
    pruner.run()
    with torch.no_grad():
        masked = model(x)
    pruner.speed_up()
    with torch.no_grad():
        assert torch.allclose(model(x), masked, atol=1e-4 * max(1.0, masked.abs().max().item()))


def test_tied_weight_is_sliced_in_every_module_that_holds_it():
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.e = nn.Linear(16, 8)
            self.mid = nn.Linear(8, 8)
            self.out = nn.Linear(8, 16)
            self.back = nn.Linear(16, 8)
            self.back.weight = self.e.weight

        def forward(self, x):
            return self.back(F.relu(self.out(F.relu(self.mid(F.relu(self.e(x)))))))

    model, x = Tied().eval(), torch.randn(3, 16)
    pruner = pi.Pruner(model, (x,), target="channel", metric="l1", objective={"name": "sparsity", "target": 0.5})
    pruner.run()
    masked = model(x)
    pruner.speed_up()
    assert model.back.weight is model.e.weight and torch.allclose(model(x), masked, atol=1e-5)


def test_position_embedding_keeps_the_stream_prunable():
    class Tokens(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Linear(4, 16)
            self.pos = nn.Parameter(torch.randn(1, 5, 16))
            self.fc1, self.fc2 = nn.Linear(16, 32), nn.Linear(32, 16)
            self.head = nn.Linear(16, 2)

        def forward(self, x):
            h = self.embed(x) + self.pos
            return self.head(h + self.fc2(F.relu(self.fc1(h))))

    model, x = Tokens().eval(), torch.randn(2, 5, 4)
    pruner = pi.Pruner(model, (x,), target="channel", metric="l1", objective={"name": "sparsity", "target": 0.5})
    assert any("embed" in layer.name for layer in pruner.layers)
    pruner.run()
    masked = model(x)
    pruner.speed_up()
    assert model.pos.shape == (1, 5, 8) and torch.allclose(model(x), masked, atol=1e-5)


def test_squeeze_excite_with_expand_as_is_prunable():
    class SE(nn.Module):
        def __init__(self):
            super().__init__()
            self.f1, self.f2 = nn.Conv2d(3, 16, 3, padding=1), nn.Conv2d(16, 4, 1)
            self.g1, self.g2 = nn.Linear(16, 4), nn.Linear(4, 16)

        def forward(self, x):
            y = self.f1(x)
            s = torch.sigmoid(self.g2(F.relu(self.g1(y.mean((2, 3))))))[:, :, None, None]
            return self.f2(y * s.expand_as(y))

    model, x = SE().eval(), torch.randn(2, 3, 5, 5)
    pruner = pi.Pruner(model, (x,), target="channel", metric="l1", objective={"name": "sparsity", "target": 0.5})
    assert any("f1" in layer.name for layer in pruner.layers)
    pruner.run()
    masked = model(x)
    pruner.speed_up()
    assert torch.allclose(model(x), masked, atol=1e-5) and model.f1.out_channels < 16


def test_plain_tensor_attribute_pins_the_channels_it_scales():
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(3, 8, 1), nn.Conv2d(8, 2, 1)
            self.scale = torch.linspace(0.5, 1.5, 8)[:, None, None]  # not a buffer: cannot be sliced

        def forward(self, x):
            return self.b(self.a(x) * self.scale)

    with pytest.raises(pi.ConfigError, match="no prunable channel group"):
        pi.Pruner(Scaled(), (torch.randn(1, 3, 4, 4),), target="channel", metric="l1",
                  objective={"name": "sparsity", "target": 0.5})
