"""Metrics: a score per unit. Import registers every built-in metric."""
from .base import METRICS, Metric, register_metric
from ..registry import import_parts

import_parts(__name__, __path__)  # every module of this package registers its parts

__all__ = ["METRICS", "Metric", "register_metric"]
