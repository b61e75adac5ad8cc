"""Offline evaluation: datasets, metrics, runners, reports and benchmarks."""
