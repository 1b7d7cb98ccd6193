"""Presets: named compositions of the five parts. A preset is nothing but a config dict."""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from ..registry import unknown_name

PART_KEYS = ("target", "metric", "allocator", "scheduler", "objective", "include", "exclude", "speed_up")


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    origin: str
    config: dict


_PRESETS: dict[str, Preset] = {}


def register_preset(name: str, description: str, origin: str, config: dict) -> Preset:
    if name in _PRESETS:
        raise ConfigError(f"preset {name!r} is already registered")
    preset = Preset(name, description, origin, config)
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

    A dict override for a part whose preset spec is a dict of the same name updates its options
    (``objective={"target": 0.7}``); any other value replaces the part. A bare number for
    `objective` sets its target.
    """
    config = copy.deepcopy(get(name).config)
    for key, value in overrides.items():
        if key not in PART_KEYS:
            raise ConfigError(f"preset override {key!r} is not a part; allowed: {', '.join(PART_KEYS)}")
        current = config.get(key)
        if key == "objective" and isinstance(value, (int, float)) and not isinstance(value, bool):
            value = {**current, "target": value} if isinstance(current, dict) else {"name": current, "target": value}
        elif isinstance(value, dict) and isinstance(current, dict) and value.get("name", current.get("name")) == current.get("name"):
            value = {**current, **value}
        config[key] = value
    return config


from . import builtin  # noqa: E402,F401  (registration)
