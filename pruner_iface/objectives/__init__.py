"""Objectives: what the user wants. Import registers every built-in objective."""
from .base import OBJECTIVES, Objective, register_objective
from ..registry import import_parts

import_parts(__name__, __path__)  # every module of this package registers its parts

__all__ = ["OBJECTIVES", "Objective", "register_objective"]
