"""Metrics: a score per unit. Import registers every built-in metric."""
from .base import METRICS, Metric, register_metric
from . import activation_norm, gradient, head_importance, magnitude, random  # noqa: F401  (registration)

__all__ = ["METRICS", "Metric", "register_metric"]
