"""Dependency graph: trace once, propagate channel labels, collect coupled channel groups."""
from .analysis import ChannelGroup, DependencyGraph, Member, build_dependency_graph
from .trace import TraceError, TracedModel, trace

__all__ = ["ChannelGroup", "DependencyGraph", "Member", "build_dependency_graph", "TraceError", "TracedModel", "trace"]
