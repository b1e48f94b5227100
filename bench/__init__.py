"""Benchmarks of the order service against its physical limit and the library people would pick.

Run `uv run --group bench python -m bench` (or `--quick` for a smoke run); see bench/RESULTS.md.
"""
