"""Reproducible benchmarks of aion's hot path (``make bench``); not part of the test suite."""
