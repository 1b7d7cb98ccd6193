"""Name-based registries for the five parts, in the spirit of timm's `register_model`.

A part is registered with a decorator and built from a name, a dict ``{"name": ..., **kwargs}``
or an instance. Third-party packages register through the entry-point group
``pruner_iface.plugins``: each entry point names a module (or callable) whose import registers parts.
"""
from __future__ import annotations

import dataclasses
import difflib
import importlib
import pkgutil
import warnings
from importlib import metadata
from typing import Any, Callable, Generic, Iterator, Mapping, TypeVar

from .errors import ConfigError, UnknownNameError

T = TypeVar("T")
PLUGIN_GROUP = "pruner_iface.plugins"
_plugins_loaded = False


def import_parts(package: str, path) -> None:
    """Import every module of a part sub-package, so that each registers itself: a new part is
    one new file, listed nowhere else."""
    for info in pkgutil.iter_modules(path):
        if info.name != "base":
            importlib.import_module(f"{package}.{info.name}")


def load_plugins() -> None:
    """Import every entry point of the ``pruner_iface.plugins`` group once."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for ep in metadata.entry_points(group=PLUGIN_GROUP):
        try:
            loaded = ep.load()
            if callable(loaded) and not isinstance(loaded, type):
                loaded()
        except Exception as exc:  # a broken plugin must not break the library
            warnings.warn(f"pruner_iface plugin {ep.name!r} ({ep.value}) failed to load: {exc}")


class Registry(Generic[T]):
    """Maps names to part classes of one kind (e.g. every Metric)."""

    def __init__(self, kind: str, base: type):
        self.kind = kind
        self.base = base
        self._entries: dict[str, type] = {}

    def register(self, name: str) -> Callable[[type], type]:
        """Class decorator: ``@METRICS.register("l1")``."""

        def decorate(cls: type) -> type:
            if not (isinstance(cls, type) and issubclass(cls, self.base)):
                raise TypeError(f"{cls!r} registered as {self.kind} {name!r} is not a {self.base.__name__}")
            if name in self._entries and self._entries[name] is not cls:
                raise ConfigError(f"{self.kind} name {name!r} is already registered by {self._entries[name].__qualname__}")
            self._entries[name] = cls
            cls.registered_name = name
            return cls

        return decorate

    def names(self) -> list[str]:
        load_plugins()
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        load_plugins()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def get(self, name: str) -> type:
        """The class registered as `name`; unknown names list the known ones and the closest match."""
        load_plugins()
        if name in self._entries:
            return self._entries[name]
        raise unknown_name(self.kind, name, self.names())

    def build(self, spec: Any, path: str | None = None) -> T:
        """Build a part from a name, a ``{"name": ..., **kwargs}`` dict or an instance."""
        path = path or self.kind
        if isinstance(spec, self.base):
            return spec
        if isinstance(spec, str):
            name, kwargs = spec, {}
        elif isinstance(spec, Mapping):
            if "name" not in spec:
                raise ConfigError(f"{path}: a dict spec needs a 'name' key (one of {', '.join(self.names())})")
            kwargs = dict(spec)
            name = kwargs.pop("name")
        else:
            raise ConfigError(
                f"{path}: expected a {self.kind} name, a dict with 'name', or a {self.base.__name__} instance;"
                f" got {type(spec).__name__}"
            )
        try:
            cls = self.get(name)
        except UnknownNameError as exc:
            raise UnknownNameError(f"{path}: {exc}") from None
        return construct(cls, kwargs, path)


def unknown_name(kind: str, name: Any, known: list[str]) -> UnknownNameError:
    """The error for an unknown name: lists the known names and the closest match."""
    close = difflib.get_close_matches(str(name), known, n=1, cutoff=0.5)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return UnknownNameError(f"unknown {kind} {name!r}.{hint} Known {kind}s: {', '.join(known)}")


def construct(cls: type, kwargs: Mapping[str, Any], path: str) -> Any:
    """Instantiate a dataclass part, rejecting unknown keys and prefixing errors with the key path."""
    if dataclasses.is_dataclass(cls):
        allowed = [f.name for f in dataclasses.fields(cls) if f.init]
        unknown = [k for k in kwargs if k not in allowed]
        if unknown:
            label = getattr(cls, "registered_name", cls.__name__)
            raise ConfigError(
                f"{path}: unknown option(s) {', '.join(map(repr, unknown))} for {label!r}; "
                f"allowed: {', '.join(allowed) or 'none'}"
            )
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        raise ConfigError(f"{path}.{exc}" if not str(exc).startswith(path) else str(exc)) from None
    except TypeError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def check(condition: bool, key: str, message: str) -> None:
    """Raise ConfigError ``"key: message"`` unless `condition` holds (used in parts' __post_init__)."""
    if not condition:
        raise ConfigError(f"{key}: {message}")
