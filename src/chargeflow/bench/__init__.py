"""Reproducible benchmarks, each comparing against a peer measured in the same run."""
