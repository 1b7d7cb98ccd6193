"""Measurements (not timed tests). Run one with `python -m benchmarks NAME` or `make bench NAME=...`."""
