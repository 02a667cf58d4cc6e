"""Benchmark scripts: each prints a table and writes JSON (``python -m benchmarks.NAME``)."""
