"""Schedulers: how the objective grows over time. Import registers every built-in scheduler."""
from .base import SCHEDULERS, CurveScheduler, Scheduler, register_scheduler
from ..registry import import_parts

import_parts(__name__, __path__)  # every module of this package registers its parts

__all__ = ["SCHEDULERS", "CurveScheduler", "Scheduler", "register_scheduler"]
