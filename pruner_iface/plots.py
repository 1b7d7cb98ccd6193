"""Matplotlib figures of a Report (optional dependency: pip install 'pruner-iface[plot]')."""
from __future__ import annotations

import os


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ImportError("plots need matplotlib: pip install 'pruner-iface[plot]'") from None
    matplotlib.use("Agg")  # files only; never open a window
    import matplotlib.pyplot as plt

    return plt


def plot_report(report, path: str | os.PathLike) -> str:
    """Two panels: each layer's kept share of its weights, and per step the objective's target and
    reached value (with evaluate() on a second axis when recorded)."""
    plt = _pyplot()
    layers = report.layers
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, max(3.5, 0.22 * len(layers) + 1.5)))
    names = [r.name or "(model)" for r in layers]
    left.barh(range(len(layers)), [r.kept / r.total if r.total else 0 for r in layers], color="tab:blue")
    left.set_yticks(range(len(layers)), names, fontsize=7)
    left.invert_yaxis()
    left.set_xlim(0, 1)
    left.set_xlabel("kept share of the layer's weights")
    left.set_title("per layer")
    steps = [s.step for s in report.steps]
    right.plot(steps, [s.objective_target for s in report.steps], "o--", color="tab:gray", label="target")
    right.plot(steps, [s.objective_value for s in report.steps], "o-", color="tab:blue", label="reached")
    right.set_xlabel("step")
    right.set_ylabel(report.objective)
    right.set_title(f"{report.objective} per step")
    evaluations = [(s.step, s.evaluation) for s in report.steps if s.evaluation is not None]
    if evaluations:
        twin = right.twinx()
        twin.plot(*zip(*evaluations), "s-", color="tab:orange", label="evaluate()")
        twin.set_ylabel("evaluate()")
        twin.legend(loc="lower right")
    right.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(os.fspath(path), dpi=110)
    plt.close(fig)
    return os.fspath(path)
