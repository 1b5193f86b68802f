"""Benchmarks whose numbers the docs quote: ``bench`` (population-trainer throughput, ``python -m
engine.benchmarks.bench``) and ``bench_ray`` (the Ray backend against the local one, ``python -m
engine.benchmarks.bench_ray``)."""
