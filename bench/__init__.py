"""Benchmarks and quality figures for imagen, run on the local stack."""
