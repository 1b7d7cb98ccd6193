"""Export a pruned model for inference: masks are baked into a copy's weights (the model itself
is untouched), the copy is put in eval mode and traced with torch.export, or written as ONNX."""
from __future__ import annotations

import copy
import importlib.util
import os
from typing import Any

import torch
from torch import nn

from .inputs import normalize_inputs
from .masks import remove_masks


def _inference_copy(model: nn.Module) -> nn.Module:
    return remove_masks(copy.deepcopy(model)).eval()


def export_program(model: nn.Module, example_inputs: Any) -> torch.export.ExportedProgram:
    """``torch.export.export`` of the pruned model (a tuple of positional inputs or a dict of
    keyword inputs); ``torch.export.save`` writes the result."""
    args, kwargs = normalize_inputs(example_inputs)
    return torch.export.export(_inference_copy(model), args, kwargs)


def export_onnx(model: nn.Module, example_inputs: Any, path: str | os.PathLike) -> str:
    """Write the pruned model as ONNX through torch's dynamo exporter; returns the path."""
    if importlib.util.find_spec("onnx") is None or importlib.util.find_spec("onnxscript") is None:
        raise ImportError("ONNX export needs onnx and onnxscript: pip install 'pruner-iface[export]'")
    args, kwargs = normalize_inputs(example_inputs)
    program = torch.onnx.export(_inference_copy(model), args, kwargs=kwargs or None, dynamo=True, verbose=False)
    program.save(os.fspath(path))
    return os.fspath(path)
