"""Benchmarks of autotune, run by hand from the repository root: `python -m bench.<name>`.

Each module here is one benchmark with a `main()`; what they share lives in bench/lib/.
bench/README.md says what each measures, bench/results/README.md which results are kept.
"""
