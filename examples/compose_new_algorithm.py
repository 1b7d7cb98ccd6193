"""Compose a pruning algorithm from parts, including a new metric registered in a few lines.

Run: .venv/bin/python examples/compose_new_algorithm.py
"""
from dataclasses import dataclass

import torch

import pruner_iface as pi
from pruner_iface.demo.digits import load_digits
from pruner_iface.demo.model import DigitsResNet
from pruner_iface.demo.train import accuracy, train


@pi.register_metric("l1_times_fan_in")
@dataclass
class L1TimesFanIn(pi.Metric):
    """|w| scaled by the layer's fan-in, so wide-input layers are pruned less eagerly."""

    def element_scores(self, layer):
        fan_in = layer.weight[0].numel()
        return layer.weight.detach().abs() * fan_in**0.5


def main():
    torch.manual_seed(0)
    data = load_digits()
    model = DigitsResNet(width=16)
    train(model, data.x_train, data.y_train, epochs=8)
    print(f"dense accuracy {accuracy(model, data.x_test, data.y_test):.4f}")

    pruner = pi.Pruner(
        model, (data.x_test[:1],),
        target="channel-local",
        metric="l1_times_fan_in",
        allocator={"name": "global", "max_ratio": 0.7},
        scheduler={"name": "agp", "start": 0, "end": 3},
        objective={"name": "params", "target": 0.5},
        exclude=["fc"],
    )
    report = pruner.run(
        fine_tune=lambda m, step: train(m, data.x_train, data.y_train, epochs=3, lr=3e-3, seed=step),
        evaluate=lambda m: accuracy(m, data.x_test, data.y_test),
    )
    pruner.speed_up()
    print(report.to_markdown())


if __name__ == "__main__":
    main()
