"""Presets: named compositions of the five parts. A preset is nothing but a config dict, plus
the options of the original algorithm, each mapped to the part options it sets
(``{"amount": "objective.target", "dim": ["target.dim", "metric.along"]}``; a training-time
mechanism's option is ``"training.<mechanism>.<key>"``). An option whose value must be
translated (INC's pattern "4x1" → a block target) maps to a function returning
``{path: value}``, where a path is ``part.key``, ``training.<mechanism>.<key>`` or a whole
``part``."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from ..registry import unknown_name

PART_KEYS = ("target", "metric", "allocator", "scheduler", "objective", "include", "exclude", "speed_up", "training")


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    origin: str
    config: dict
    options: dict = field(default_factory=dict)  # original's option -> "part.key" path(s) it sets, or a translator


_PRESETS: dict[str, Preset] = {}


def register_preset(name: str, description: str, origin: str, config: dict, options: dict | None = None) -> Preset:
    if name in _PRESETS:
        raise ConfigError(f"preset {name!r} is already registered")
    for option, paths in (options or {}).items():
        if callable(paths):
            continue  # a translator: its paths are checked when it runs
        for path in [paths] if isinstance(paths, str) else paths:
            part = path.split(".")[0]
            if part not in PART_KEYS or path.count(".") not in ((0, 2) if part == "training" else (0, 1)):
                raise ConfigError(f"preset {name!r}: option {option!r} maps to {path!r}, not 'part', 'part.key' "
                                  f"or 'training.mechanism.key'")
            if part == "training" and "." in path:
                listed = [s if isinstance(s, str) else s.get("name") for s in config.get("training", [])]
                if path.split(".")[1] not in listed:
                    raise ConfigError(f"preset {name!r}: option {option!r} maps to {path!r}, but the preset's "
                                      f"training list is {listed}")
    preset = Preset(name, description, origin, config, dict(options or {}))
    _PRESETS[name] = preset
    return preset


def names() -> list[str]:
    return sorted(_PRESETS)


def get(name: str) -> Preset:
    if name not in _PRESETS:
        raise unknown_name("preset", name, names())
    return _PRESETS[name]


def resolve(name: str, **overrides: Any) -> dict:
    """The preset's config with `overrides` applied.

    An override named like one of the preset's `options` (the original algorithm's option, e.g.
    ``amount``) sets the part options it maps to; options apply in the preset's order, then parts.
    A dict override for a part whose preset spec is a dict of the same name updates its options
    (``objective={"target": 0.7}``); any other value replaces the part. A bare number for
    `objective` sets its target.
    """
    preset = get(name)
    config = copy.deepcopy(preset.config)
    order = list(preset.options)  # options in the preset's order (a pattern before the op types it keeps)
    for key, value in sorted(overrides.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)):
        if key in preset.options:
            paths = preset.options[key]
            if callable(paths):
                for path, translated in paths(value).items():
                    _set_option(config, path, translated)
                continue
            for path in [paths] if isinstance(paths, str) else paths:
                _set_option(config, path, value)
            continue
        if key not in PART_KEYS:
            own = f"options of {name!r}: {', '.join(preset.options)}; " if preset.options else f"{name!r} has no options; "
            raise ConfigError(f"preset override {key!r} is neither an option of the preset nor a part ({own}"
                              f"parts: {', '.join(PART_KEYS)})")
        current = config.get(key)
        if key == "objective" and isinstance(value, (int, float)) and not isinstance(value, bool):
            value = {**current, "target": value} if isinstance(current, dict) else {"name": current, "target": value}
        elif isinstance(value, dict) and isinstance(current, dict) and value.get("name", current.get("name")) == current.get("name"):
            value = {**current, **value}
        config[key] = value
    return config


def _as_dict(spec: Any) -> dict:
    return dict(spec) if isinstance(spec, dict) else {"name": spec}


def _set_option(config: dict, path: str, value: Any) -> None:
    """Set ``part.key`` (or ``training.mechanism.key``, or a whole ``part``) in a preset's config."""
    part, *rest = path.split(".")
    if not rest:
        config[part] = value
    elif part == "training":
        mechanism, option = rest
        config["training"] = [{**_as_dict(spec), option: value} if _as_dict(spec)["name"] == mechanism else spec
                              for spec in config["training"]]
    else:
        config[part] = {**_as_dict(config.get(part)), rest[0]: value}


from ..registry import import_parts  # noqa: E402

import_parts(__name__, __path__)  # every module of this package registers its presets
