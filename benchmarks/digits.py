"""The demo's digits CNN pruned to 0.5 and 0.25 of its FLOPs by four pruner_iface algorithms and
by Torch-Pruning 1.6.1 in the same process: same trained model, same FLOPs budget, same
fine-tune (4 epochs, Adam 1e-3, cosine), then accuracy, FLOPs, params and latency measured
(all models of a budget interleaved, batch 256, 2 threads).

Ours: channel target with l1 + uniform, taylor + global, l1 + simulated annealing (evaluate() on
300 training images), l1 + knapsack under a latency-table budget (the budget is the same
fraction, of measured latency; its FLOPs are what it reaches). Torch-Pruning: MetaPruner with
its group-L1 importance (local, the same ratio everywhere) and with Taylor importance (global),
the channel ratio bisected until FLOPs meet the budget.

`python -m benchmarks digits [--quick]` writes benchmarks/results/digits.{md,json} and three
plots: accuracy vs FLOPs, latency vs FLOPs and the kept share of each layer's channels.
"""
from __future__ import annotations

import copy
import time

import torch
from torch import nn

import pruner_iface as pi
from pruner_iface.demo.digits import load_digits
from pruner_iface.demo.model import DigitsResNet
from pruner_iface.demo.train import accuracy, batches, cross_entropy_loss, train

from .common import machine_header
from .results_io import RESULTS, pyplot, write_results

try:
    import torch_pruning as tp
except ImportError:  # optional: the bench extra installs it
    tp = None

FINE_TUNE_EPOCHS = 4


def ours(metric, allocator, objective="flops", data=False, evaluate=False):
    def prune(model, d, budget):
        example = d.x_test[:256] if objective == "latency-table" else d.x_test[:1]  # latency: the benchmark batch
        pruner = pi.Pruner(model, (example,), target="channel", metric=metric, allocator=allocator,
                           objective={"name": objective, "target": budget})
        pruner.run(data=list(batches(d.x_train, d.y_train, 128))[:8] if data else None,
                   loss_fn=cross_entropy_loss if data else None,
                   evaluate=(lambda m: accuracy(m, d.x_train[:300], d.y_train[:300])) if evaluate else None)
        return pruner.speed_up()
    return prune


def torch_pruning(importance, global_pruning):
    def prune(model, d, budget):
        example = d.x_test[:1]
        dense_flops = pi.count_flops(model, (example,))

        def pruned_at(ratio):
            m = copy.deepcopy(model)
            imp = importance()
            pruner = tp.pruner.MetaPruner(m, example, importance=imp, pruning_ratio=ratio, global_pruning=global_pruning,
                                          ignored_layers=[m.fc])
            if isinstance(imp, tp.importance.TaylorImportance):
                m.zero_grad()
                for xb, yb in list(batches(d.x_train, d.y_train, 128))[:8]:
                    cross_entropy_loss(m, (xb, yb)).backward()
            pruner.step()
            return m

        low, high = 0.0, 0.95
        best = pruned_at(high)
        for _ in range(14):  # the smallest channel ratio whose FLOPs meet the budget
            mid = (low + high) / 2
            candidate = pruned_at(mid)
            if pi.count_flops(candidate, (example,)) <= budget * dense_flops:
                high, best = mid, candidate
            else:
                low = mid
        return best
    return prune


def methods():
    out = {
        "ours l1+uniform": ours("l1", "uniform"),
        "ours taylor+global": ours("taylor", "global", data=True),
        "ours l1+annealing": ours("l1", "annealing", evaluate=True),
        "ours l1+knapsack (latency table)": ours("l1", "knapsack", objective="latency-table"),
    }
    if tp is not None:
        out["torch-pruning group-l1 (local)"] = torch_pruning(lambda: tp.importance.GroupMagnitudeImportance(p=1), False)
        out["torch-pruning taylor (global)"] = torch_pruning(lambda: tp.importance.TaylorImportance(), True)
    return out


def channels(model: nn.Module) -> dict[str, int]:
    return {name: m.out_channels for name, m in model.named_modules() if isinstance(m, nn.Conv2d)}


def main(argv):
    quick = "--quick" in argv
    torch.manual_seed(0)
    torch.set_num_threads(2)
    print(machine_header("digits CNN: pruner_iface vs Torch-Pruning 1.6.1"))
    if tp is None:
        print("torch-pruning is not installed, so only pruner_iface runs: pip install torch-pruning==1.6.1 "
              "(make bench installs it)")
    d = load_digits(seed=0)
    dense = DigitsResNet()
    train(dense, d.x_train, d.y_train, epochs=3 if quick else 15, seed=0)
    example = (d.x_test[:1],)
    budgets = [0.5] if quick else [0.5, 0.25]
    rows, kept = [], {}
    dense_row = {"budget": 1.0, "method": "dense", "accuracy": accuracy(dense, d.x_test, d.y_test),
                 "flops": pi.count_flops(dense, example), "params": pi.count_params(dense)}
    for budget in budgets:
        models = {}
        for name, prune in methods().items():
            model = copy.deepcopy(dense)
            started = time.perf_counter()
            model = prune(model, d, budget)
            seconds = time.perf_counter() - started
            acc_pruned = accuracy(model, d.x_test, d.y_test)
            train(model, d.x_train, d.y_train, epochs=1 if quick else FINE_TUNE_EPOCHS, lr=1e-3, seed=1)
            models[name] = model
            rows.append({"budget": budget, "method": name, "accuracy_before_fine_tune": acc_pruned,
                         "accuracy": accuracy(model, d.x_test, d.y_test), "flops": pi.count_flops(model, example),
                         "params": pi.count_params(model), "prune_seconds": round(seconds, 2)})
            kept[(budget, name)] = channels(model)
            print(f"{budget:.2f} {name:34s} acc {rows[-1]['accuracy']:.4f} (before fine-tune {acc_pruned:.4f}) "
                  f"FLOPs {rows[-1]['flops'] / dense_row['flops']:.3f} prune {seconds:.1f} s")
        latency = pi.compare_latency({"dense": dense, **models}, (d.x_test[:256],), rounds=3 if quick else 6,
                                     runs=5 if quick else 10, threads=2)
        for row in rows:
            if row["budget"] == budget:
                row["latency_ms"] = latency[row["method"]].median_ms
                row["latency_ratio"] = latency[row["method"]].ratio_to(latency["dense"])
        dense_row["latency_ms"] = latency["dense"].median_ms
    for row in rows:
        row["flops_ratio"] = row["flops"] / dense_row["flops"]
    columns = ["budget", "method", "accuracy", "accuracy_before_fine_tune", "flops_ratio", "params",
               "latency_ratio", "prune_seconds"]
    notes = [f"Dense: accuracy {dense_row['accuracy']:.4f}, {dense_row['flops']:,} FLOPs, {dense_row['params']:,} "
             f"params, {dense_row['latency_ms']:.3f} ms (batch 256). Fine-tune: {FINE_TUNE_EPOCHS} epochs for every "
             f"method. latency_ratio: median over interleaved rounds against the dense model in the same run.",
             "The knapsack row's budget is a latency fraction (latency-table objective), so its FLOPs differ."]
    path = write_results("digits" + ("_quick" if quick else ""), "digits CNN: pruner_iface vs Torch-Pruning 1.6.1",
                         columns, rows, notes, {"dense": dense_row})
    plot(rows, dense_row, kept, dense, "digits" + ("_quick" if quick else ""))
    print(path.read_text())


def plot(rows, dense_row, kept, dense, name):
    plt = pyplot()
    methods_ = sorted({r["method"] for r in rows})
    markers = dict(zip(methods_, "osD^vP*X"))
    for key, label, fname in (("accuracy", "test accuracy after fine-tune", "accuracy_vs_flops"),
                              ("latency_ratio", "latency / dense latency (batch 256, 2 threads)", "latency_vs_flops")):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for method in methods_:
            pts = sorted((r["flops_ratio"], r[key]) for r in rows if r["method"] == method)
            ax.plot(*zip(*pts), marker=markers[method], label=method)
        if key == "accuracy":
            ax.axhline(dense_row["accuracy"], color="gray", ls=":", label="dense")
        else:
            ax.plot([0, 1], [0, 1], color="gray", ls=":", label="latency = FLOPs")
        ax.set_xlabel("FLOPs / dense FLOPs")
        ax.set_ylabel(label)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(RESULTS / f"{name}_{fname}.png", dpi=110)
        plt.close(fig)
    budget = min(b for b, _ in kept)
    layers = list(channels(dense))
    dense_channels = channels(dense)
    fig, ax = plt.subplots(figsize=(9, 4.5))
    width = 0.8 / max(1, len(methods_))
    for i, method in enumerate(methods_):
        share = [kept[(budget, method)][layer] / dense_channels[layer] for layer in layers]
        ax.bar([x + i * width for x in range(len(layers))], share, width, label=method)
    ax.set_xticks([x + 0.4 - width / 2 for x in range(len(layers))], layers, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel(f"kept share of output channels (budget {budget} FLOPs)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(RESULTS / f"{name}_kept_per_layer.png", dpi=110)
    plt.close(fig)
