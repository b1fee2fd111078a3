"""Benchmarks; run one with `python -m bench.NAME` or `python bench/NAME.py`."""
