"""Choose which modules a target prunes: by module type, include/exclude regexes (full match)."""
from __future__ import annotations

import re
from typing import Iterable, Sequence

from torch import nn

from .errors import ConfigError

DEFAULT_MODULE_TYPES = ("Linear", "Conv1d", "Conv2d", "Conv3d")


def resolve_types(types: Iterable[str | type], key: str = "target.module_types") -> tuple[type, ...]:
    """Turn names such as ``"Linear"`` (torch.nn) or ``"pkg.mod.Cls"`` into module classes."""
    resolved = []
    for t in types:
        if isinstance(t, type) and issubclass(t, nn.Module):
            resolved.append(t)
            continue
        if not isinstance(t, str):
            raise ConfigError(f"{key}: {t!r} is not a module class or class name")
        if hasattr(nn, t) and isinstance(getattr(nn, t), type):
            resolved.append(getattr(nn, t))
            continue
        mod_name, _, cls_name = t.rpartition(".")
        try:
            import importlib

            cls = getattr(importlib.import_module(mod_name), cls_name) if mod_name else None
        except (ImportError, AttributeError):
            cls = None
        if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
            raise ConfigError(f"{key}: unknown module type {t!r}; use a torch.nn class name (e.g. 'Linear') or 'package.module.Class'")
        resolved.append(cls)
    return tuple(resolved)


def compile_patterns(patterns: Sequence[str] | None, key: str) -> list[re.Pattern]:
    if patterns is None:
        return []
    if isinstance(patterns, str):
        patterns = [patterns]
    if len(patterns) == 0:
        raise ConfigError(f"{key}: an empty list matches nothing; omit it (None) to select every module")
    compiled = []
    for i, p in enumerate(patterns):
        try:
            compiled.append(re.compile(p))
        except (re.error, TypeError) as exc:
            raise ConfigError(f"{key}[{i}]: {p!r} is not a valid regular expression ({exc})") from None
    return compiled


def select_modules(
    model: nn.Module,
    types: tuple[type, ...],
    include: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
) -> list[tuple[str, nn.Module]]:
    """Modules of `types` whose names fully match an include pattern (all if none) and no exclude one.

    Every include and exclude pattern must match at least one candidate module: a pattern that
    matches nothing is almost always a typo, and silently pruning something else is worse.
    """
    inc = compile_patterns(include, "include")
    exc = compile_patterns(exclude, "exclude")
    candidates = [(n, m) for n, m in model.named_modules() if isinstance(m, types) and n]
    type_names = ", ".join(t.__name__ for t in types)
    if not candidates:
        raise ConfigError(
            f"the model has no submodule of the target's types ({type_names}); the root module itself is not "
            f"a candidate: wrap a bare layer, e.g. nn.Sequential(layer)"
        )
    names = [n for n, _ in candidates]
    for kind, pats in (("include", inc), ("exclude", exc)):
        for p in pats:
            if not any(p.fullmatch(n) for n in names):
                sample = ", ".join(names[:8]) + (" ..." if len(names) > 8 else "")
                raise ConfigError(
                    f"{kind} pattern {p.pattern!r} matches no module of types {type_names} "
                    f"(patterns must match whole names; candidates: {sample})"
                )
    chosen = [
        (n, m)
        for n, m in candidates
        if (not inc or any(p.fullmatch(n) for p in inc)) and not any(p.fullmatch(n) for p in exc)
    ]
    if not chosen:
        raise ConfigError("include/exclude leave no module to prune")
    return chosen
