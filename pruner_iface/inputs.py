"""Example inputs: a tuple of positional tensors or a dict of keyword inputs."""
from __future__ import annotations

import contextlib
from typing import Any, Mapping

import torch
from torch import nn
from torch.utils import _pytree as pytree

from .errors import InputError

ExampleInputs = tuple | Mapping[str, Any]


def normalize_inputs(example_inputs: Any) -> tuple[tuple, dict]:
    """(args, kwargs) from a tensor, a tuple/list of positional inputs or a dict of keyword inputs."""
    if isinstance(example_inputs, torch.Tensor):
        return (example_inputs,), {}
    if isinstance(example_inputs, (tuple, list)):
        return tuple(example_inputs), {}
    if isinstance(example_inputs, Mapping):
        bad = [k for k in example_inputs if not isinstance(k, str)]
        if bad:
            raise InputError(f"example_inputs dict keys must be argument names (str); got {bad!r}")
        return (), dict(example_inputs)
    raise InputError(
        f"example_inputs must be a tuple of positional tensors or a dict of keyword inputs; "
        f"got {type(example_inputs).__name__}"
    )


def describe_inputs(args: tuple, kwargs: dict) -> str:
    def one(v):
        return f"Tensor{tuple(v.shape)}" if isinstance(v, torch.Tensor) else type(v).__name__

    parts = [one(a) for a in args] + [f"{k}={one(v)}" for k, v in kwargs.items()]
    return "(" + ", ".join(parts) + ")"


@contextlib.contextmanager
def eval_mode(model: nn.Module):
    """Put the model in eval mode and restore every submodule's own train/eval flag afterwards."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, training in modes:
            m.training = training


def check_forward(model: nn.Module, args: tuple, kwargs: dict) -> None:
    """Run one eval-mode forward without gradients; a failure becomes an InputError."""
    try:
        with torch.no_grad(), eval_mode(model):
            model(*args, **kwargs)
    except Exception as exc:
        raise InputError(
            f"the model ({type(model).__name__}) failed on example_inputs {describe_inputs(args, kwargs)}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def output_tensors(output: Any) -> tuple[torch.Tensor, ...]:
    """The tensors of a model's output, in order, through dicts (Hugging Face ModelOutput),
    lists and tuples; other objects (caches, strings) are dropped."""
    return tuple(v for v in pytree.tree_leaves(_plain_containers(output)) if isinstance(v, torch.Tensor))


def _plain_containers(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain_containers(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain_containers(v) for v in value]
    return value
