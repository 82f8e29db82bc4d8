"""Baseline servers the benchmark measures petalops against."""
