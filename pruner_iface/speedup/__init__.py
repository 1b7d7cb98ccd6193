"""Speed-up: physically shrink structured-pruned modules."""
