"""Save a Pruner's run state to a run directory and resume from it.

The state is what an uninterrupted run would still have in memory: the model's weights and
masks, the step counter and the steps done, the report so far, and the run-time state each
part declares in ``state_keys`` (metric accumulators, a random metric's generator, a
mechanism's staged masks or rewind point). Bind-time state (graphs, plans) is rebuilt from the
parts. References to layers and modules are stored by index and name, so the state loads into
a fresh copy of the model. The file is written atomically and holds only tensors and plain
values (``torch.load(weights_only=True)``); a file of another format or one that does not match
the pruner and model is refused before anything changes.
"""
from __future__ import annotations

import json
import os
import random
from typing import Any

import numpy as np
import torch
from torch import nn

from .errors import InputError
from .masks import masked_params, set_mask
from .report import FORMAT as REPORT_FORMAT
from .report import Report

FORMAT = "pruner_iface.run/1"
STATE_FILE = "pruner_state.pt"


class _Refs:
    """Layers and modules of one pruner, by object and by index / name."""

    def __init__(self, model: nn.Module, layers: list):
        # accumulators are keyed by id() of a layer or of one of its member tensors (what
        # metrics score); saved as positions, they are mapped back to the new objects on load
        self.by_position = {(i, None): layer for i, layer in enumerate(layers)}
        self.by_position.update({(i, j): member for i, layer in enumerate(layers)
                                 for j, member in enumerate(layer.members()) if member is not layer})
        self.position = {id(obj): key for key, obj in self.by_position.items()}
        self.modules = dict(model.named_modules())
        self.module_name = {id(m): name for name, m in self.modules.items()}


def _encode(value: Any, refs: _Refs, where: str) -> Any:
    if value is None or isinstance(value, (bool, int, float, str, torch.Tensor)):
        return value
    if isinstance(value, nn.Module):
        if id(value) not in refs.module_name:
            raise InputError(f"cannot save {where}: it refers to a module outside the model")
        return {"__module__": refs.module_name[id(value)]}
    if isinstance(value, dict):
        return {"__dict__": [(_encode_key(k, refs, where), _encode(v, refs, where)) for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        items = [_encode(v, refs, where) for v in value]
        return items if isinstance(value, list) else {"__tuple__": items}
    if isinstance(value, torch.Generator):
        return {"__torch_generator__": value.get_state()}
    if isinstance(value, random.Random):
        return {"__random__": _encode(value.getstate(), refs, where)}
    if isinstance(value, np.ndarray):
        return {"__ndarray__": torch.from_numpy(value.copy())}
    raise InputError(f"cannot save {where}: values of type {type(value).__name__} are not supported")


def _encode_key(key: Any, refs: _Refs, where: str) -> Any:
    if isinstance(key, int) and not isinstance(key, bool) and key in refs.position:
        layer, member = refs.position[key]
        return {"__layer__": layer} if member is None else {"__member__": [layer, member]}
    return _encode(key, refs, where)


def _decode(value: Any, refs: _Refs) -> Any:
    if isinstance(value, list):
        return [_decode(v, refs) for v in value]
    if not isinstance(value, dict):
        return value
    if "__layer__" in value or "__member__" in value:
        layer, member = value["__member__"] if "__member__" in value else (value["__layer__"], None)
        if (layer, member) not in refs.by_position:
            raise InputError(f"the saved state refers to layer {layer} (member {member}), which this pruner lacks")
        return id(refs.by_position[(layer, member)])
    if "__module__" in value:
        if value["__module__"] not in refs.modules:
            raise InputError(f"the saved state refers to module {value['__module__']!r}, which the model lacks")
        return refs.modules[value["__module__"]]
    if "__dict__" in value:
        return {_decode(k, refs): _decode(v, refs) for k, v in value["__dict__"]}
    if "__tuple__" in value:
        return tuple(_decode(v, refs) for v in value["__tuple__"])
    if "__torch_generator__" in value:
        generator = torch.Generator()
        generator.set_state(value["__torch_generator__"])
        return generator
    if "__random__" in value:
        rng = random.Random()
        rng.setstate(_decode(value["__random__"], refs))
        return rng
    if "__ndarray__" in value:
        return value["__ndarray__"].numpy()
    raise InputError(f"the saved state holds an unknown value {sorted(value)}")


def _parts(pruner) -> dict[str, Any]:
    parts = {"target": pruner.target, "metric": pruner.metric, "allocator": pruner.allocator,
             "scheduler": pruner.scheduler, "objective": pruner.objective}
    parts.update({f"training.{i}": m for i, m in enumerate(pruner.training)})
    return parts


def _spec_text(pruner) -> str:
    return json.dumps(pruner._parts_spec, sort_keys=True, default=str)


def save_state(pruner, run_dir: str | os.PathLike) -> str:
    """Write the pruner's run state to ``run_dir/pruner_state.pt`` (atomically); returns the path."""
    refs = _Refs(pruner.model, pruner.layers)
    masks = {f"{mod}.{param}" if mod else param: mask.detach().cpu().clone()
             for mod, _, param, mask in masked_params(pruner.model)}
    mask_keys = {f"{key}_mask" for key in masks}
    state = {
        "format": FORMAT,
        "parts": _spec_text(pruner),
        "step": pruner._step,
        "done_steps": sorted(pruner._done_steps),
        "counter_used": pruner._counter_used,
        "report": json.dumps({"format": REPORT_FORMAT, **pruner.report.to_dict()}, default=str),
        "model": {k: v.detach().cpu().clone() for k, v in pruner.model.state_dict().items() if k not in mask_keys},
        "masks": masks,
        "part_state": {name: {key: _encode(getattr(part, key), refs, f"{name}.{key}")
                              for key in getattr(part, "state_keys", ()) if hasattr(part, key)}
                       for name, part in _parts(pruner).items()},
    }
    os.makedirs(run_dir, exist_ok=True)
    path = os.path.join(os.fspath(run_dir), STATE_FILE)
    torch.save(state, path + ".tmp")
    os.replace(path + ".tmp", path)
    return path


def load_state(pruner, run_dir: str | os.PathLike) -> None:
    """Restore what :func:`save_state` wrote into `pruner` and its model; checks everything first."""
    path = os.path.join(os.fspath(run_dir), STATE_FILE)
    try:
        state = torch.load(path, weights_only=True)
    except FileNotFoundError:
        raise InputError(f"{os.fspath(run_dir)!r} holds no saved pruner state ({STATE_FILE})") from None
    except Exception as exc:
        raise InputError(f"{path!r} cannot be read ({type(exc).__name__}: {exc}); it is damaged") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise InputError(f"{path!r} is not a pruner_iface run state of format {FORMAT!r} (found {found!r}); it was "
                         f"written by another version")
    missing = [k for k in ("parts", "step", "done_steps", "counter_used", "report", "model", "masks", "part_state")
               if k not in state]
    if missing:
        raise InputError(f"{path!r} is damaged: it lacks {missing}")
    if state["parts"] != _spec_text(pruner):
        raise InputError(f"{path!r} was saved by a pruner with other parts:\n  saved: {state['parts']}\n  this:  "
                         f"{_spec_text(pruner)}")
    model = pruner.model
    refs = _Refs(model, pruner.layers)
    current = {k: v for k, v in model.state_dict().items() if not k.endswith("_mask")}
    shapes = {k: tuple(v.shape) for k, v in state["model"].items()}
    if shapes != {k: tuple(v.shape) for k, v in current.items()}:
        differ = sorted(set(shapes).symmetric_difference(current)) or \
            [k for k in shapes if shapes[k] != tuple(current[k].shape)]
        raise InputError(f"{path!r} was saved from another model (tensors differ: {differ[:5]})")
    targets = []
    for key, keep in state["masks"].items():
        module_name, _, param = key.rpartition(".")
        module = refs.modules.get(module_name)
        if module is None or not isinstance(getattr(module, param, None), torch.Tensor) or \
                tuple(getattr(module, param).shape) != tuple(keep.shape):
            raise InputError(f"{path!r}: the saved mask {key!r} fits no tensor of the model")
        targets.append((module, param, keep))
    own_masks = {f"{mod}.{param}" if mod else param for mod, _, param, _ in masked_params(model)}
    if not own_masks <= set(state["masks"]):
        raise InputError(f"the model already has masks the saved state lacks ({sorted(own_masks - set(state['masks']))[:5]}); "
                         f"resume into a fresh copy of the model")
    parts = _parts(pruner)
    decoded = {}
    for name, saved in state["part_state"].items():
        if name not in parts:
            raise InputError(f"{path!r} holds state for part {name!r}, which this pruner lacks")
        decoded[name] = {key: _decode(value, refs) for key, value in saved.items()}
    report = Report.from_dict(json.loads(state["report"]), repr(path))
    # everything is checked: apply
    model.load_state_dict(state["model"], strict=False)
    for module, param, keep in targets:
        set_mask(module, param, keep.to(getattr(module, param).device))
    for name, values in decoded.items():
        for key, value in values.items():
            setattr(parts[name], key, value)
    pruner._step = int(state["step"])
    pruner._done_steps = set(int(s) for s in state["done_steps"])
    pruner._counter_used = bool(state["counter_used"])
    pruner.report = report
