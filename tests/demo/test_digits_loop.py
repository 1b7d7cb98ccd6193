"""The loop on the demo's digits CNN: train, prune to a FLOPs budget with fine-tuning, speed up."""
import torch

import pruner_iface as pi
from pruner_iface.demo.digits import load_digits
from pruner_iface.demo.model import DigitsResNet
from pruner_iface.demo.train import accuracy, cross_entropy_loss, train


def test_digits_split_is_fixed_and_standardised():
    a, b = load_digits(), load_digits()
    assert torch.equal(a.x_test, b.x_test) and len(a.y_train) + len(a.y_test) == 1797
    assert a.x_train.shape[1:] == (1, 8, 8) and abs(float(a.x_train.mean())) < 1e-4


def test_prune_digits_cnn_to_half_flops_keeps_accuracy_and_speed_up_matches():
    torch.manual_seed(0)
    data = load_digits()
    model = DigitsResNet(width=16)
    train(model, data.x_train, data.y_train, epochs=6)
    dense_acc = accuracy(model, data.x_test, data.y_test)
    example = (data.x_test[:1],)
    batches = [(data.x_train[i:i + 64], data.y_train[i:i + 64]) for i in range(0, 256, 64)]
    pruner = pi.Pruner(model, example, target="channel-local", metric="taylor", allocator="uniform",
                       scheduler={"name": "agp", "start": 0, "end": 2},
                       objective={"name": "flops", "target": 0.5}, exclude=["fc"])
    report = pruner.run(data=batches, loss_fn=cross_entropy_loss,
                        fine_tune=lambda m, s: train(m, data.x_train, data.y_train, epochs=1, lr=1e-3, seed=s),
                        evaluate=lambda m: accuracy(m, data.x_test, data.y_test))
    assert dense_acc > 0.9
    assert report.flops <= 0.5 * report.dense_flops + 1
    train(model, data.x_train, data.y_train, epochs=3, lr=1e-3, seed=9)  # the user's final fine-tune
    assert accuracy(model, data.x_test, data.y_test) > dense_acc - 0.05
    masked = model.eval()(data.x_test)
    pruner.speed_up()
    assert torch.allclose(model(data.x_test), masked, atol=1e-4)
    assert pi.count_params(model) == report.params
