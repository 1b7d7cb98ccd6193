"""Targets: what can be pruned, as units. Import registers every built-in target."""
from .base import TARGETS, Target, TargetLayer, TensorLayer, TensorTarget, register_target
from ..registry import import_parts

import_parts(__name__, __path__)  # every module of this package registers its parts

__all__ = ["TARGETS", "Target", "TargetLayer", "TensorLayer", "TensorTarget", "register_target"]
