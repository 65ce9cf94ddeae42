"""Nimbus benchmarks: side-by-side comparisons reported as ratios.

Run `python -m bench [--quick]`; the report lands in `bench/results/latest.{json,md}`.
Each comparison is one module in `bench/comparisons/`, registered in
`bench.comparisons.COMPARISONS`.
"""
