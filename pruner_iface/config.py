"""PrunerConfig: the five parts plus include/exclude, from a dict or a YAML/JSON file."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from typing import Any, Mapping, Optional

import yaml

from .allocators import ALLOCATORS
from .errors import ConfigError
from .metrics import METRICS
from .objectives import OBJECTIVES
from .schedulers import SCHEDULERS
from .targets import TARGETS
from .training import MECHANISMS


@dataclass
class Parts:
    target: Any
    metric: Any
    allocator: Any
    scheduler: Any
    objective: Any
    training: list = field(default_factory=list)


def build_training(specs: Optional[list]) -> list:
    """The training-time mechanisms of a `training` list (names, dicts or instances)."""
    if specs is None:
        return []
    if not isinstance(specs, (list, tuple)):
        raise ConfigError(f"training: must be a list of mechanisms (names or dicts); got {type(specs).__name__}")
    built = [MECHANISMS.build(spec, f"training[{i}]") for i, spec in enumerate(specs)]
    names = [m.registered_name for m in built]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"training: {', '.join(map(repr, twice))} listed more than once; list each mechanism once")
    if sum(m.stages_masks for m in built) > 1:
        raise ConfigError("training: at most one mechanism may stage a step's masks (e.g. 'progressive')")
    return built


def build_parts(target, metric, allocator, scheduler, objective, training=None) -> Parts:
    """Build each part from a name, dict or instance, then check that they fit together."""
    parts = Parts(
        target=TARGETS.build(target, "target"),
        metric=METRICS.build(metric, "metric"),
        allocator=ALLOCATORS.build(allocator, "allocator"),
        scheduler=SCHEDULERS.build(scheduler, "scheduler"),
        objective=OBJECTIVES.build(objective, "objective"),
        training=build_training(training),
    )
    max_sparsity = getattr(parts.target, "max_sparsity", None)
    if max_sparsity is not None and parts.objective.removes and parts.objective.target > max_sparsity + 1e-12:
        raise ConfigError(
            f"objective.target: {parts.objective.target} is above the most the "
            f"{parts.target.registered_name!r} target can remove ({max_sparsity:g} of the weights)"
        )
    parts.scheduler.plan(parts.objective)  # validates schedule values against the objective
    return parts


def _plain(value: Any) -> Any:
    """Tuples to lists, recursively, so a config dumps to YAML/JSON and loads back equal."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


@dataclass
class PrunerConfig:
    target: Any
    metric: Any
    objective: Any
    allocator: Any = "uniform"
    scheduler: Any = "one-pass"
    include: Optional[list] = None
    exclude: Optional[list] = None
    speed_up: bool = False
    training: Optional[list] = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "PrunerConfig":
        if not isinstance(data, Mapping):
            raise ConfigError(f"config: expected a mapping of parts; got {type(data).__name__}")
        allowed = [f.name for f in fields(cls)]
        unknown = [k for k in data if k not in allowed]
        if unknown:
            raise ConfigError(f"config: unknown key(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(allowed)}")
        missing = [k for k in ("target", "metric", "objective") if k not in data]
        if missing:
            raise ConfigError(f"config: missing required key(s) {', '.join(missing)}")
        for key in ("include", "exclude"):
            value = data.get(key)
            if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                raise ConfigError(f"config.{key}: must be a list of module-name regexes; got {value!r}")
        if not isinstance(data.get("speed_up", False), bool):
            raise ConfigError(f"config.speed_up: must be true or false; got {data['speed_up']!r}")
        config = cls(**{k: _plain(v) for k, v in data.items()})
        config.validate()
        return config

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "PrunerConfig":
        path = os.fspath(path)
        try:
            with open(path) as f:
                text = f.read()
        except OSError as exc:
            raise ConfigError(f"config file {path!r} cannot be read: {exc}") from None
        try:
            data = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
        except (json.JSONDecodeError, yaml.YAMLError) as exc:
            raise ConfigError(f"config file {path!r} is not valid {'JSON' if path.endswith('.json') else 'YAML'}: {exc}") from None
        return cls.from_dict(data)

    @classmethod
    def load(cls, source: "str | os.PathLike | Mapping | PrunerConfig") -> "PrunerConfig":
        if isinstance(source, PrunerConfig):
            return source
        if isinstance(source, Mapping):
            return cls.from_dict(source)
        return cls.from_file(source)

    def validate(self) -> Parts:
        return build_parts(self.target, self.metric, self.allocator, self.scheduler, self.objective, self.training)

    def to_dict(self) -> dict:
        out = {f.name: _plain(getattr(self, f.name)) for f in fields(self)}
        return {k: v for k, v in out.items() if v is not None}

    def to_yaml(self, path: str | None = None) -> str:
        text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        if path is not None:
            with open(path, "w") as f:
                f.write(text)
        return text
