"""Benchmarks of Patron (`make bench`); figures are recorded in docs/benchmarks.md."""
