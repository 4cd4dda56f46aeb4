"""Benchmarks of servind side by side with dockerd: `make bench` (see bench/RESULTS.md)."""
