"""Benchmarks: speed and quality targets, printed as ratios against baselines measured in the same run."""
