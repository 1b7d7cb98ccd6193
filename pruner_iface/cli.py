"""The `pruner-iface` command: prune, report, presets, parts, demo."""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Sequence

import torch

from .errors import ConfigError, PrunerError


def _load_factory(spec: str) -> dict:
    """`package.module:callable` returning a model, (model, example_inputs) or a dict with keys
    model, example_inputs and optionally data, loss_fn, fine_tune, evaluate."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"--model {spec!r}: expected 'package.module:callable'")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"--model {spec!r}: cannot import ({exc})") from None
    built = factory()
    if isinstance(built, torch.nn.Module):
        return {"model": built}
    if isinstance(built, tuple) and len(built) == 2:
        return {"model": built[0], "example_inputs": built[1]}
    if isinstance(built, dict) and "model" in built:
        return built
    raise ConfigError(f"--model {spec!r} returned {type(built).__name__}; expected a model, (model, inputs) or a dict")


def _objective_override(text: str) -> dict:
    name, sep, value = text.partition("=")
    try:
        return {"name": name, "target": float(value)} if sep else {"name": name}
    except ValueError:
        raise ConfigError(f"--objective {text!r}: expected NAME=VALUE such as flops=0.5") from None


def _cmd_prune(args) -> int:
    from .config import PrunerConfig
    from .presets import resolve
    from .pruner import Pruner

    config = resolve(args.preset) if args.preset else PrunerConfig.from_file(args.config).to_dict()
    if args.objective:
        override = _objective_override(args.objective)
        config["objective"] = {**(config["objective"] if isinstance(config["objective"], dict) else {}), **override}
    built = _load_factory(args.model)
    model = built["model"]
    inputs = built.get("example_inputs")
    if args.input_shape:
        inputs = (torch.randn(*[int(s) for s in args.input_shape.split(",")]),)
    if inputs is None:
        raise ConfigError("no example inputs: give --input-shape or return (model, example_inputs) from --model")
    cfg = PrunerConfig.from_dict(config)
    pruner = Pruner.from_config(cfg, model, inputs)
    report = pruner.run(data=built.get("data"), loss_fn=built.get("loss_fn"), fine_tune=built.get("fine_tune"),
                        evaluate=built.get("evaluate"), progress=True)
    if args.speed_up or cfg.speed_up:
        pruner.speed_up()
    os.makedirs(args.out, exist_ok=True)
    cfg.to_yaml(os.path.join(args.out, "config.yaml"))
    report.to_json(os.path.join(args.out, "report.json"))
    report.to_markdown(os.path.join(args.out, "report.md"))
    report.plot(os.path.join(args.out, "report.png"))
    torch.save(model, os.path.join(args.out, "model.pt"))
    _print_before_after(report)
    print(f"wrote {args.out}/config.yaml, report.json, report.md, report.png, model.pt")
    return 0


def _cmd_report(args) -> int:
    from .report import Report

    path = os.path.join(args.run_dir, "report.json")
    if not os.path.isfile(path):
        raise ConfigError(f"{args.run_dir!r} is not a run directory: it has no report.json "
                          f"(`pruner-iface prune --out DIR` writes one)")
    report = Report.load(path)
    out = args.out or args.run_dir
    os.makedirs(out, exist_ok=True)
    print(report.to_markdown(os.path.join(out, "report.md")))
    report.plot(os.path.join(out, "report.png"))
    print(f"wrote {out}/report.md, report.png")
    return 0


def _print_before_after(report) -> None:
    print(f"{'':10s}{'before':>16s}{'after':>16s}{'ratio':>8s}")
    for label, a, b in (("params", report.dense_params, report.params), ("FLOPs", report.dense_flops, report.flops)):
        ratio = f"{b / a:8.3f}" if a and b is not None else "       -"
        print(f"{label:10s}{a if a is not None else '-':>16,}{b if b is not None else '-':>16,}{ratio}")


def _cmd_presets(args) -> int:
    from . import presets

    for name in presets.names():
        p = presets.get(name)
        options = f" (options: {', '.join(p.options)})" if p.options else ""
        print(f"{name:27s} {p.description}{options}  [{p.origin}]")
    return 0


def _cmd_parts(args) -> int:
    from . import REGISTRIES

    for kind, registry in REGISTRIES.items():
        print(f"{kind + 's':12s} {', '.join(registry.names())}")
    return 0


def _cmd_demo(args) -> int:
    from .demo.run import DemoOptions, run_demo

    run_demo(DemoOptions(out=args.out, epochs=args.epochs, flops=args.flops, seed=args.seed,
                         progress=not args.no_progress))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pruner-iface", description="Composable pruning for PyTorch.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prune", help="prune a model from a config file or a preset")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--config", help="YAML or JSON config with target, metric, allocator, scheduler, objective")
    src.add_argument("--preset", help="a preset name (see `pruner-iface presets`)")
    p.add_argument("--model", required=True,
                   help="package.module:callable returning a model, (model, example_inputs) or a dict")
    p.add_argument("--input-shape", help="example input shape, e.g. 1,3,32,32")
    p.add_argument("--objective", help="override the objective, e.g. flops=0.5 or sparsity=0.9")
    p.add_argument("--speed-up", action="store_true", help="physically shrink structured-pruned modules")
    p.add_argument("--out", default="prune_output", help="output folder")
    p.set_defaults(func=_cmd_prune)
    r = sub.add_parser("report", help="render a saved run (its report.json) as Markdown and a plot")
    r.add_argument("run_dir", help="a folder written by `pruner-iface prune --out`")
    r.add_argument("--out", help="where to write report.md and report.png (default: the run folder)")
    r.set_defaults(func=_cmd_report)
    sub.add_parser("presets", help="list presets with a one-line description").set_defaults(func=_cmd_presets)
    sub.add_parser("parts", help="list every registry's names").set_defaults(func=_cmd_parts)
    d = sub.add_parser("demo", help="train, prune to half the FLOPs, fine-tune and report on the digits CNN")
    d.add_argument("--out", default="demo_output")
    d.add_argument("--epochs", type=int, default=15)
    d.add_argument("--flops", type=float, default=0.5)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--no-progress", action="store_true")
    d.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except PrunerError as exc:
        print(f"pruner-iface: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
