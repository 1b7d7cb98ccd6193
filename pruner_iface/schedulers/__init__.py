"""Schedulers: how the objective grows over time. Import registers every built-in scheduler."""
from .base import SCHEDULERS, CurveScheduler, Scheduler, register_scheduler
from . import agp, decay, linear, one_pass, table  # noqa: F401  (registration)

__all__ = ["SCHEDULERS", "CurveScheduler", "Scheduler", "register_scheduler"]
