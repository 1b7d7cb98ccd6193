"""Dependency graph: trace once, propagate channel labels, collect coupled channel groups."""
from . import attention  # noqa: F401  (registers the attention rules)
from . import einsum  # noqa: F401  (registers the einsum rule)
from .analysis import ChannelGroup, DependencyGraph, Member, build_dependency_graph
from .trace import TraceError, TracedModel, trace

__all__ = ["ChannelGroup", "DependencyGraph", "Member", "build_dependency_graph", "TraceError", "TracedModel", "trace"]
