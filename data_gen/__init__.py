"""Synthetic click logs for the embedded default run, tests and benchmarks."""
