"""Report: what a pruning run did, per step and per layer; JSON, Markdown and plot renderings."""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from typing import Optional

from .errors import InputError

FORMAT = "pruner_iface.report/1"


@dataclass
class LayerRow:
    name: str
    shape: list[int]
    kept: int
    total: int
    sparsity: float
    units_kept: int
    units_total: int


@dataclass
class StepRow:
    step: int
    objective_target: float
    objective_value: float
    params: int
    flops: Optional[int]
    tries: list[dict]
    objective_measured: Optional[float] = None  # the true value after masking (budgets) or of the chosen candidate
    objective_predicted: Optional[float] = None  # verified objectives: what the cost model predicted for it
    evaluation: Optional[float] = None
    seconds: float = 0.0


@dataclass
class Report:
    """Per-step and per-layer rows plus dense/final params, FLOPs and evaluate() values."""

    parts: dict
    objective: str
    objective_target: float
    dense_params: int
    dense_flops: Optional[int]
    dense_evaluation: Optional[float] = None
    steps: list[StepRow] = field(default_factory=list)
    layers: list[LayerRow] = field(default_factory=list)
    params: Optional[int] = None
    flops: Optional[int] = None
    evaluation: Optional[float] = None
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict, source: str = "report") -> "Report":
        """Rebuild a Report from :meth:`to_json`'s data; refuses other formats and missing keys."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise InputError(f"{source} is not a pruner_iface report of format {FORMAT!r} (found {found!r}); "
                             f"it was written by another version or is not a report")
        try:
            steps = [StepRow(**row) for row in data["steps"]]
            layers = [LayerRow(**row) for row in data["layers"]]
            own = {f.name for f in fields(cls)} - {"steps", "layers"}
            return cls(**{k: v for k, v in data.items() if k in own}, steps=steps, layers=layers)
        except (KeyError, TypeError) as exc:
            raise InputError(f"{source} is a damaged report ({type(exc).__name__}: {exc})") from None

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Report":
        """Read a report written by :meth:`to_json`."""
        try:
            with open(path) as f:
                data = json.load(f)
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read the report {os.fspath(path)!r}: {exc}") from None
        return cls.from_dict(data, repr(os.fspath(path)))

    def plot(self, path: str | os.PathLike) -> str:
        """Write a PNG: kept share per layer, and the objective (and evaluate()) per step."""
        from .plots import plot_report

        return plot_report(self, path)

    def prediction_errors(self) -> list[float]:
        """Relative error (predicted / measured − 1) of the objective's cost model for every
        measured candidate of every step: how far a latency table or proxy was from the clock."""
        return [t["estimate"] / t["value"] - 1 for s in self.steps for t in s.tries
                if t.get("kind") == "measured" and t.get("estimate") is not None and t["value"]]

    def to_json(self, path: str | None = None) -> str:
        text = json.dumps({"format": FORMAT, **self.to_dict()}, indent=2, default=str)
        if path is not None:
            with open(path, "w") as f:
                f.write(text + "\n")
        return text

    def to_markdown(self, path: str | None = None) -> str:
        def ratio(a, b):
            return f"{a / b:.3f}" if a is not None and b else "-"

        def num(v, fmt="{:,}"):
            return "-" if v is None else fmt.format(v)

        lines = [
            "# Pruning report",
            "",
            "| part | spec |",
            "|---|---|",
            *[f"| {k} | `{json.dumps(v, default=str)}` |" for k, v in self.parts.items()],
            "",
            "| | dense | pruned | ratio |",
            "|---|---|---|---|",
            f"| params | {num(self.dense_params)} | {num(self.params)} | {ratio(self.params, self.dense_params)} |",
            f"| FLOPs | {num(self.dense_flops)} | {num(self.flops)} | {ratio(self.flops, self.dense_flops)} |",
            f"| evaluate() | {num(self.dense_evaluation, '{:.4f}')} | {num(self.evaluation, '{:.4f}')} | |",
        ]
        for key, value in self.extra.items():
            lines.append(f"| {key} | {value} | | |" if not isinstance(value, (list, tuple)) else
                         f"| {key} | " + " | ".join(str(v) for v in value) + " |")
        lines += [
            "",
            f"## Steps ({self.objective}, target {self.objective_target})",
            "",
            "| step | target | reached | predicted | params | FLOPs | tries | evaluate() | seconds |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for s in self.steps:
            lines.append(
                f"| {s.step} | {s.objective_target:.4f} | {s.objective_value:.4f} | "
                f"{num(s.objective_predicted, '{:.4f}')} | {num(s.params)} | "
                f"{num(s.flops)} | {len(s.tries)} | {num(s.evaluation, '{:.4f}')} | {s.seconds:.2f} |"
            )
        errors = self.prediction_errors()
        if errors:
            mean_abs = sum(abs(e) for e in errors) / len(errors)
            lines += ["", f"Cost model vs measurement over {len(errors)} measured candidates: mean |error| "
                          f"{mean_abs:.1%}, range {min(errors):+.1%} to {max(errors):+.1%}."]
        lines += ["", "## Layers", "", "| layer | shape | kept / total | sparsity | units kept / total |", "|---|---|---|---|---|"]
        for r in self.layers:
            lines.append(
                f"| {r.name} | {'x'.join(map(str, r.shape))} | {r.kept:,} / {r.total:,} | {r.sparsity:.3f} | "
                f"{r.units_kept:,} / {r.units_total:,} |"
            )
        text = "\n".join(lines) + "\n"
        if path is not None:
            with open(path, "w") as f:
                f.write(text)
        return text
