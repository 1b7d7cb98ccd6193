"""Training-time mechanisms: what acts inside the user's training loop besides the pruning
steps. Import registers every built-in mechanism."""
from .base import MECHANISMS, Mechanism, Penalty, TrainingContext, register_mechanism
from ..registry import import_parts

import_parts(__name__, __path__)  # every module of this package registers its parts

__all__ = ["MECHANISMS", "Mechanism", "Penalty", "TrainingContext", "register_mechanism"]
