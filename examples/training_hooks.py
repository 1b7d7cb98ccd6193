"""Step-driven pruning inside your own training loop with the five hooks (INC-style).

4x1 blocks scored by snip_momentum, global allocation, exp decay to 80% over 60 steps.
Run: .venv/bin/python examples/training_hooks.py
"""
import torch
import torch.nn.functional as F

import pruner_iface as pi
from pruner_iface.demo.digits import load_digits
from pruner_iface.demo.model import DigitsResNet
from pruner_iface.demo.train import accuracy, batches, train


def main():
    torch.manual_seed(0)
    data = load_digits()
    model = DigitsResNet(width=16)
    train(model, data.x_train, data.y_train, epochs=5)
    pruner = pi.Pruner(
        model, (data.x_test[:1],),
        target={"name": "block", "block": [4, 1]}, metric="snip_momentum", allocator="global",
        scheduler={"name": "decay", "curve": "exp", "start": 0, "end": 60, "frequency": 10},
        objective={"name": "sparsity", "target": 0.8}, exclude=["stem.0", "fc"],
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    pruner.on_train_begin()
    for epoch in range(6):
        model.train()
        for x, y in batches(data.x_train, data.y_train, 64, generator):
            pruner.on_step_begin()
            optimizer.zero_grad()
            F.cross_entropy(model(x), y).backward()
            pruner.on_before_optimizer_step()
            optimizer.step()
            pruner.on_after_optimizer_step()
        print(f"epoch {epoch}: accuracy {accuracy(model, data.x_test, data.y_test):.4f}")
    report = pruner.on_train_end()
    print(f"sparsity reached {report.steps[-1].objective_value:.3f} in {len(report.steps)} pruning steps; "
          f"params {report.params:,} of {report.dense_params:,}")


if __name__ == "__main__":
    main()
