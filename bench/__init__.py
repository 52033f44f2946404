"""Parlor's benchmarks: each prints its figures beside a baseline measured in the same run.

Run one with `python -m bench.<name>` (cpu_per_token, ttft, concurrency, store, local_model,
startup) or all of them with `python -m bench.all`, which also writes bench/RESULTS.md.
They never run as tests and reach nothing but 127.0.0.1.
"""
