import pytest
import torch
from torch import nn


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.fc1 = nn.Linear(16 * 4 * 4, 32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.max_pool2d(torch.relu(self.conv2(x)), 2)
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))


class KwargModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(12, 24)
        self.head = nn.Linear(24, 4)

    def forward(self, features, scale=None):
        h = torch.relu(self.proj(features))
        if scale is not None:
            h = h * scale
        return self.head(h)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def cnn():
    torch.manual_seed(0)
    return SmallCNN().eval()


@pytest.fixture
def cnn_inputs():
    return (torch.randn(2, 3, 8, 8),)


@pytest.fixture
def cnn_batches():
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(4, 3, 8, 8, generator=g), torch.randint(0, 10, (4,), generator=g)) for _ in range(3)]


def ce_loss(model, batch):
    x, y = batch
    return nn.functional.cross_entropy(model(x), y)


def state(model):
    """A deep snapshot of parameters and buffers for 'model untouched' checks."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same_state(model, snapshot):
    now = model.state_dict()
    return now.keys() == snapshot.keys() and all(torch.equal(now[k], snapshot[k]) for k in now)


def forward_loss(model, batch):
    """A loss whose only use is the forward pass (calibration statistics)."""
    return model(batch).sum()


def calibrate_and_prune(model, x, ratio, training, target="channel"):
    """l2 pruning to `ratio` sparsity with calibration `training` mechanisms fed two halves of `x`."""
    import pruner_iface as pi

    pruner = pi.Pruner(model, (x[:2],), target=target, metric="l2", objective={"name": "sparsity", "target": ratio},
                       training=training)
    pruner.run(data=[x[: len(x) // 2], x[len(x) // 2:]], loss_fn=forward_loss)
    return pruner


def shrinks_as_masked(model, x, atol=1e-5, **pruner_args):
    """Prune `model` on inputs `x` with `pruner_args`, speed it up, and check the shrunk model
    computes what the masked one did (outputs a tensor or a tuple of tensors); returns the pruner."""
    import pruner_iface as pi

    pruner = pi.Pruner(model, x, **pruner_args)
    pruner.run()
    with torch.no_grad():
        masked = model(*x)
    pruner.speed_up()
    with torch.no_grad():
        shrunk = model(*x)
    pairs = zip(masked, shrunk) if isinstance(masked, tuple) else [(masked, shrunk)]
    assert all(torch.allclose(s, m, atol=atol) for m, s in pairs)
    return pruner
