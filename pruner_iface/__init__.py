"""pruner_iface: composable neural-network pruning for PyTorch.

Every algorithm is a target, a metric, an allocator, a scheduler and an objective, each picked by
name from its registry and combined by :class:`Pruner`.
"""
from . import presets
from .activation_masks import mask_activations
from .allocators import ALLOCATORS, Allocator, register_allocator
from .config import PrunerConfig
from .counting import count_flops, count_params
from .errors import (
    ConfigError, InputError, MissingDataError, ObjectiveNotReachedError, PrunerError, SpeedUpError,
    UnknownNameError,
)
from .export import export_onnx, export_program
from .latency import compare_latency, measure_latency
from .masks import remove_masks
from .persistence import load_pruned, save_pruned
from .metrics import METRICS, Metric, register_metric
from .objectives import OBJECTIVES, Objective, register_objective
from .pruner import Pruner
from .report import Report
from .semi_structured import to_semi_structured
from .schedulers import SCHEDULERS, Scheduler, register_scheduler
from .targets import TARGETS, Target, register_target

__version__ = "0.1.0"

REGISTRIES = {
    "target": TARGETS, "metric": METRICS, "allocator": ALLOCATORS,
    "scheduler": SCHEDULERS, "objective": OBJECTIVES,
}

__all__ = [
    "Pruner", "Report", "mask_activations", "PrunerConfig", "presets", "count_flops", "count_params", "remove_masks",
    "measure_latency", "compare_latency", "save_pruned", "load_pruned", "export_program", "export_onnx",
    "to_semi_structured", "REGISTRIES", "TARGETS", "METRICS", "ALLOCATORS", "SCHEDULERS", "OBJECTIVES",
    "Target", "Metric", "Allocator", "Scheduler", "Objective", "register_target", "register_metric",
    "register_allocator", "register_scheduler", "register_objective", "PrunerError", "ConfigError",
    "UnknownNameError", "InputError", "MissingDataError", "ObjectiveNotReachedError", "SpeedUpError",
]
