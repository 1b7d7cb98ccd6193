"""Speed-up: physically shrink structured-pruned modules."""
from .rows import KeptRows, speed_up_rows

__all__ = ["KeptRows", "speed_up_rows"]
