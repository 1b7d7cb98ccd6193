"""The embedded demo: a residual CNN on scikit-learn's digits, pruned to half its FLOPs."""
