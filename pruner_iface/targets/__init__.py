"""Targets: what can be pruned, as units. Import registers every built-in target."""
from .base import TARGETS, Target, TargetLayer, TensorLayer, TensorTarget, register_target
from . import block, channel, channel_local, element, head, hidden, mlp, nm  # noqa: F401  (registration)

__all__ = ["TARGETS", "Target", "TargetLayer", "TensorLayer", "TensorTarget", "register_target"]
